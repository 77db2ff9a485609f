"""Frame-index sampling and the spatial transforms."""

from __future__ import annotations

import pytest
import torch

from vidshield.data import random_indices, sample_indices
from vidshield.data.sampling import random_window_indices
from vidshield.data.transforms import (
    center_crop,
    color_jitter,
    eval_transform,
    horizontal_flip,
    random_crop,
    random_resized_crop,
    resize,
    short_side_resize,
    train_short_side,
    train_transform,
)
from vidshield.io import uniform_indices


def test_uniform_indices_known_values():
    assert uniform_indices(10, 10).tolist() == list(range(10))
    assert uniform_indices(100, 5).tolist() == [0, 25, 50, 74, 99]  # round(linspace(0, 99, 5))
    assert uniform_indices(3, 7).tolist() == [0, 0, 1, 1, 1, 2, 2]  # short video: frames repeat
    assert uniform_indices(50, 1).tolist() == [0]


def test_uniform_sampling_is_the_nearest_frame_to_each_even_position():
    """The data sets' evaluation clips and ``read_frames`` share one sampling: index k is a nearest
    integer to the exact position k (n - 1) / (t - 1) (halves either way), first and last included."""
    from fractions import Fraction

    for n in range(1, 120):
        for t in (1, 2, 7, 16, 40):
            idx = sample_indices(n, t, sampling="uniform")
            assert idx.dtype == torch.int64 and idx.tolist() == uniform_indices(n, t).tolist(), (n, t)
            exact = [Fraction(0)] if t == 1 else [Fraction(k * (n - 1), t - 1) for k in range(t)]
            assert all(abs(i - x) <= Fraction(1, 2) for i, x in zip(idx.tolist(), exact)), (n, t)
            assert idx[0] == 0 and (t == 1 or idx[-1] == n - 1)


def test_random_indices_one_per_segment_and_seeded():
    n, t = 100, 10
    for seed in range(20):
        idx = random_indices(n, t, generator=torch.Generator().manual_seed(seed))
        assert idx.dtype == torch.int64 and idx.shape == (t,)
        # index k lies in segment [10k, 10k + 10)
        assert torch.equal(idx // 10, torch.arange(t))
    a = random_indices(n, t, generator=torch.Generator().manual_seed(5))
    b = random_indices(n, t, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    draws = {tuple(random_indices(n, t, generator=torch.Generator().manual_seed(s)).tolist()) for s in range(10)}
    assert len(draws) > 1
    short = random_indices(3, 8, generator=torch.Generator().manual_seed(0))
    assert short.min() >= 0 and short.max() <= 2 and bool((short[1:] >= short[:-1]).all())


def test_random_window_indices_stay_in_a_window_of_the_asked_span():
    n, t = 48, 16
    spans = []
    for seed in range(30):
        idx = random_window_indices(n, t, min_span=0.6, generator=torch.Generator().manual_seed(seed))
        assert idx.shape == (t,) and idx.min() >= 0 and idx.max() < n and bool((idx[1:] >= idx[:-1]).all())
        spans.append(int(idx[-1] - idx[0]) + 1)
    assert min(spans) >= 16 and max(spans) <= n and len(set(spans)) > 3  # windows of 29-48 frames
    assert torch.equal(random_window_indices(n, t, min_span=1.0, generator=torch.Generator().manual_seed(3)),
                       random_indices(n, t, generator=_after_two_draws(3)))  # fmt: skip
    with pytest.raises(ValueError, match="min_span"):
        random_window_indices(n, t, min_span=0)


def _after_two_draws(seed: int) -> torch.Generator:
    g = torch.Generator().manual_seed(seed)
    torch.rand(2, generator=g, dtype=torch.float64)
    return g


def test_sample_indices_errors():
    with pytest.raises(ValueError, match="sampling"):
        sample_indices(10, 4, sampling="dense")
    with pytest.raises(ValueError, match="at least one frame"):
        uniform_indices(0, 4)
    with pytest.raises(ValueError, match="num_frames"):
        random_indices(10, 0)


@pytest.fixture
def video(rng):
    return torch.rand(5, 3, 30, 40, generator=rng)


def test_resize_and_short_side(video):
    out = resize(video, (12, 20))
    assert out.shape == (5, 3, 12, 20) and out.min() >= 0 and out.max() <= 1
    assert short_side_resize(video, 15).shape == (5, 3, 15, 20)
    assert short_side_resize(video.transpose(-1, -2), 15).shape == (5, 3, 20, 15)
    assert resize(video, (30, 40)) is video  # no-op at the same size


def test_crops(video):
    c = center_crop(video, (10, 20))
    assert torch.equal(c, video[..., 10:20, 10:30])
    r = random_crop(video, (10, 20), generator=torch.Generator().manual_seed(0))
    assert r.shape == (5, 3, 10, 20)
    # the window is the same for every frame: locate frame 0's crop and check the others there
    hits = [
        (top, left)
        for top in range(21)
        for left in range(21)
        if torch.equal(video[0, :, top : top + 10, left : left + 20], r[0])
    ]
    assert len(hits) == 1
    top, left = hits[0]
    assert torch.equal(r, video[..., top : top + 10, left : left + 20])
    with pytest.raises(ValueError, match="cannot crop"):
        center_crop(video, (31, 10))


def test_flip_is_mirror(video):
    f = horizontal_flip(video)
    assert torch.equal(f[..., 0], video[..., -1])
    assert torch.equal(horizontal_flip(f), video)


def test_train_transform_keeps_shape_range_and_input(video):
    before = video.clone()
    transform = train_transform((16, 16), generator=torch.Generator().manual_seed(1))
    outs = [transform(video) for _ in range(8)]
    assert all(o.shape == (5, 3, 16, 16) and o.min() >= 0 and o.max() <= 1 for o in outs)
    assert len({o.sum().item() for o in outs}) > 1  # random crops / flips differ
    assert torch.equal(video, before)
    assert train_short_side((112, 112)) == 128


def test_random_resized_crop_is_one_window_for_all_frames(video):
    ramp = torch.arange(24.0).div(23).expand(5, 3, 20, 24).clone()  # brightness = column
    for seed in range(10):
        out = random_resized_crop(ramp, (16, 16), scale=(0.3, 1.0), generator=torch.Generator().manual_seed(seed))
        assert out.shape == (5, 3, 16, 16) and torch.equal(out, out[:1].expand_as(out))
        assert bool((out[..., 1:] >= out[..., :-1] - 1e-6).all())  # still increasing left to right
    whole = random_resized_crop(video, (30, 40), scale=(1.0, 1.0), ratio=(4 / 3, 4 / 3))  # the whole frame
    assert torch.allclose(whole, video)


def test_color_jitter_changes_colours_not_geometry(video):
    assert torch.allclose(color_jitter(video, 0.0), video, atol=1e-6)
    out = color_jitter(video, 0.3, generator=torch.Generator().manual_seed(0))
    assert out.shape == video.shape and 0 <= out.min() <= out.max() <= 1 and not torch.equal(out, video)
    grey = video.mean(dim=1, keepdim=True).expand_as(video)
    g = color_jitter(grey, 0.3, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(g[:, 0], g[:, 1]) and torch.allclose(g[:, 1], g[:, 2])  # grey stays grey
    with pytest.raises(ValueError, match="strength"):
        color_jitter(video, 1.0)


def test_eval_transform_is_deterministic(video):
    transform = eval_transform((16, 16))
    a, b = transform(video), transform(video)
    assert a.shape == (5, 3, 16, 16) and torch.equal(a, b)


def test_transforms_reject_bad_input():
    with pytest.raises(ValueError, match="one video"):
        horizontal_flip(torch.rand(2, 5, 3, 8, 8))
    with pytest.raises(ValueError, match="size"):
        resize(torch.rand(2, 3, 8, 8), (0, 4))

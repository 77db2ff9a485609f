"""The synthetic action generator: determinism, contract, balance, recognisable classes, smooth motion."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vidshield.data import SyntheticActions, clip_generator, generate_clip, synthetic_class_names, synthetic_split_seed
from vidshield.data.synthetic import MAX_SYNTHETIC_CLASSES
from vidshield.video import check_video, rgb_to_luma

SMALL = dict(frames=6, height=40, width=48)


def test_same_seed_and_index_give_identical_clips():
    a = SyntheticActions(12, seed=3, **SMALL)
    b = SyntheticActions(12, seed=3, **SMALL)
    for i in (0, 7, 11):
        assert torch.equal(a[i][0], b[i][0])
    # the clip depends on (seed, index) only, not on what was generated before
    c = SyntheticActions(12, seed=3, **SMALL)
    assert torch.equal(c[11][0], a[11][0])


def test_different_index_or_seed_gives_different_clips():
    ds = SyntheticActions(20, seed=0, **SMALL)
    assert not torch.equal(ds[0][0], ds[10][0])  # same class, different clip
    other = SyntheticActions(20, seed=1, **SMALL)
    assert not torch.equal(ds[0][0], other[0][0])


def test_global_rng_untouched():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    SyntheticActions(4, **SMALL)[2]
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("frames,height,width", [(16, 112, 112), (5, 32, 64), (1, 16, 16)])
def test_shape_dtype_range(frames, height, width):
    video, label = SyntheticActions(3, frames=frames, height=height, width=width)[1]
    assert video.shape == (frames, 3, height, width)
    assert video.dtype == torch.float32
    check_video(video)  # raises unless in [0, 1]
    assert isinstance(label, int) and label == 1


def test_labels_are_balanced_and_negative_index_works():
    ds = SyntheticActions(25, num_classes=5, **SMALL)
    assert ds.labels == [i % 5 for i in range(25)]
    assert torch.bincount(torch.tensor(ds.labels)).tolist() == [5] * 5
    assert torch.equal(ds[-1][0], ds[24][0]) and ds[-1][1] == 4
    with pytest.raises(IndexError):
        ds[25]


def test_class_names_unique_and_stable_across_num_classes():
    names = synthetic_class_names(MAX_SYNTHETIC_CLASSES)
    assert len(set(names)) == MAX_SYNTHETIC_CLASSES
    assert synthetic_class_names(10) == names[:10]
    assert names[:3] == ["disc-orbit", "square-bounce", "triangle-zigzag"]
    # a class renders the same whatever K is
    a = generate_clip(3, generator=clip_generator(0, 3), num_classes=4, **SMALL)
    b = generate_clip(3, generator=clip_generator(0, 3), num_classes=40, **SMALL)
    assert torch.equal(a, b)


def test_invalid_arguments():
    with pytest.raises(ValueError, match="num_classes"):
        SyntheticActions(4, num_classes=MAX_SYNTHETIC_CLASSES + 1)
    with pytest.raises(ValueError, match="label"):
        generate_clip(10, generator=torch.Generator(), num_classes=10)
    with pytest.raises(ValueError, match="height and width"):
        SyntheticActions(4, height=8)
    with pytest.raises(ValueError, match="split"):
        synthetic_split_seed(0, "dev")


def test_split_seeds_are_disjoint():
    seeds = {synthetic_split_seed(s, split) for s in range(50) for split in ("train", "val", "test")}
    assert len(seeds) == 150


def _actor_colour(video: torch.Tensor, fraction: float = 0.04) -> torch.Tensor:
    """Mean colour of the pixels of the middle frame that differ most from its median colour."""
    frame = video[video.shape[0] // 2].flatten(1)  # (3, P)
    distance = (frame - frame.median(dim=1).values[:, None]).abs().sum(0)
    return frame[:, distance.topk(int(fraction * distance.numel())).indices].mean(1)


def test_single_frames_are_recognisable_by_colour():
    """A nearest-centroid classifier on one frame's actor colour beats chance (10 %) by far."""
    kw = dict(frames=3, height=48, width=48)
    train, test = SyntheticActions(100, seed=1, **kw), SyntheticActions(100, seed=2, **kw)
    x_train = torch.stack([_actor_colour(train[i][0]) for i in range(len(train))])
    x_test = torch.stack([_actor_colour(test[i][0]) for i in range(len(test))])
    y_train, y_test = torch.tensor(train.labels), torch.tensor(test.labels)
    centroids = torch.stack([x_train[y_train == k].mean(0) for k in range(10)])
    # every pair of class mean colours differs clearly
    gaps = torch.cdist(centroids, centroids) + torch.eye(10)
    assert gaps.min() > 0.1
    accuracy = (torch.cdist(x_test, centroids).argmin(1) == y_test).float().mean()
    assert accuracy >= 0.6


def test_frames_change_smoothly():
    """Neighbouring frames differ far less than frames of different clips of the same class."""
    ds = SyntheticActions(20, frames=8, height=64, width=64, seed=4)
    clips = torch.stack([ds[i][0] for i in range(len(ds))])  # (N, T, 3, H, W)
    neighbour = (clips[:, 1:] - clips[:, :-1]).abs().mean()
    across = (clips[:10] - clips[10:]).abs().mean()  # same labels, different clips
    assert neighbour < 0.25 * across
    assert neighbour > 0  # things do move


def test_background_changes_over_time():
    """Camera pan and brightness drift: most pixels (background included) change by more than
    the sensor noise between the first and last frame."""
    video = SyntheticActions(1, frames=16, height=64, width=64, seed=9)[0][0]
    first, last = video[0], video[-1]
    change = (first - last).abs().mean(0)
    assert float(change.median()) > 2 / 255  # beyond the sensor noise (sigma 1.5/255)


def _block_matching_error(cur: torch.Tensor, ref: torch.Tensor, *, block: int = 16, radius: int = 5):
    """Per-block mean absolute error of the best integer shift within ``radius`` and of no shift.

    ``cur``, ``ref``: luma ``(H, W)``. Returns ``(best, unmoved)``, each ``(H // block, W // block)``.
    """
    h, w = cur.shape
    padded = F.pad(ref[None, None], (radius,) * 4, mode="replicate")[0, 0]
    best = None
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            shifted = padded[radius + dy : radius + dy + h, radius + dx : radius + dx + w]
            error = F.avg_pool2d((cur - shifted).abs()[None, None], block)[0, 0]
            best = error if best is None else torch.minimum(best, error)
    return best, F.avg_pool2d((cur - ref).abs()[None, None], block)[0, 0]


def test_block_matching_between_neighbours_works():
    """Where the actor moves, the best block match in the previous frame explains the change:
    its error is a fraction of the unmoved error, and overall near the sensor-noise level."""
    ds = SyntheticActions(10, frames=5, height=64, width=64, seed=3)
    best, unmoved = [], []
    for i in range(len(ds)):
        luma = rgb_to_luma(ds[i][0]) * 255
        for t in range(1, luma.shape[0]):
            b, u = _block_matching_error(luma[t], luma[t - 1])
            best.append(b.flatten())
            unmoved.append(u.flatten())
    best, unmoved = torch.cat(best), torch.cat(unmoved)
    moving = unmoved > 8  # blocks the actor moves through (background alone changes < 8/255)
    assert moving.sum() >= 10
    assert best[moving].median() < 0.5 * unmoved[moving].median()
    assert best.median() < 2.5  # in 1/255 units; noise alone gives about 1.2

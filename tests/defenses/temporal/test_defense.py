"""TemporalDefense: the properties the paper's temporal defense relies on."""

import pytest
import torch
from tests.conftest import make_moving_video

from vidshield.defenses.temporal import TemporalDefense, defend_stream, key_frame_mask, rebuild_frames


def sign_noise(shape, rng, amplitude=2 / 255):
    return (torch.randint(0, 2, shape, generator=rng).float() * 2 - 1) * amplitude


def test_static_video_returned_unchanged(rng):
    frame = torch.randint(0, 256, (3, 21, 30), generator=rng).float() / 255
    video = frame.expand(1, 5, 3, 21, 30).clone()
    mask = torch.tensor([[False, True, True, False, True]])
    out = TemporalDefense()(video, polluted=mask)
    assert torch.equal(out, video)


def test_unmarked_frames_bit_identical_even_off_grid(rng, moving_video):
    video = (moving_video + torch.rand(moving_video.shape, generator=rng) * 1e-3).clamp(0, 1).unsqueeze(0)
    mask = torch.zeros(1, 8, dtype=torch.bool)
    mask[0, [2, 5]] = True
    out = TemporalDefense()(video, polluted=mask)
    assert torch.equal(out[~mask], video[~mask])
    assert out.dtype == video.dtype and out.shape == video.shape


@pytest.mark.parametrize("bidirectional", [True, False])
def test_sign_perturbation_removed(rng, moving_video, bidirectional):
    clean = moving_video.unsqueeze(0)
    polluted = clean.clone()
    marked = [2, 3, 6]
    polluted[0, marked] = (clean[0, marked] + sign_noise(clean[0, marked].shape, rng)).clamp(0, 1)
    mask = torch.zeros(1, 8, dtype=torch.bool)
    mask[0, marked] = True
    out = TemporalDefense(bidirectional=bidirectional)(polluted, polluted=mask)
    before = (polluted - clean)[0, marked, :, :24, :40].abs().mean()
    after = (out - clean)[0, marked, :, :24, :40].abs().mean()  # interior (the motion leaves the border uncovered)
    assert after < 0.1 * before


def test_residual_restores_what_prediction_misses(rng):
    # a brightness change the reference does not have: the coded residual carries it back
    clean = make_moving_video(frames=3, height=32, width=32)
    clean[1] = (clean[1] + 40 / 255).clamp(0, 1)
    mask = torch.tensor([[False, True, False]])
    with_res = TemporalDefense(qp=24)(clean.unsqueeze(0), polluted=mask)[0, 1]
    without = TemporalDefense(residual=False)(clean.unsqueeze(0), polluted=mask)[0, 1]
    assert (with_res - clean[1]).abs().mean() < 0.25 * (without - clean[1]).abs().mean()


def test_odd_sizes_and_batch_equals_items(rng):
    a = make_moving_video(frames=5, height=37, width=53, seed=1)
    b = make_moving_video(frames=5, height=37, width=53, dy=-1, dx=1, seed=2)
    video = torch.stack([a, b])
    video = (video + sign_noise(video.shape, rng)).clamp(0, 1)
    mask = torch.tensor([[False, True, True, False, True], [True, False, True, False, False]])
    defense = TemporalDefense(method="diamond", chunk=2)
    out = defense(video, polluted=mask)
    for i in range(2):
        assert torch.equal(out[i : i + 1], defense(video[i : i + 1], polluted=mask[i : i + 1]))


def test_stream_equals_batch(rng, moving_video):
    video = (moving_video + sign_noise(moving_video.shape, rng)).clamp(0, 1)
    flags = [False, True, True, False, True, False, True, True]
    defense = TemporalDefense(chunk=1)
    batch = defense(video.unsqueeze(0), polluted=torch.tensor([flags]))[0]
    streamed = torch.stack(list(defend_stream(iter(video), flags, defense)))
    assert torch.equal(streamed, batch)
    by_index = torch.stack(list(defend_stream(iter(video), lambda i: flags[i], defense)))
    assert torch.equal(by_index, batch)


def test_inputs_not_mutated(moving_video):
    video = moving_video.unsqueeze(0).clone()
    mask = key_frame_mask(8, every=4, n=1)
    v0, m0 = video.clone(), mask.clone()
    TemporalDefense()(video, polluted=mask)
    assert torch.equal(video, v0) and torch.equal(mask, m0)


def test_key_frame_mask_and_default_mask(moving_video):
    assert key_frame_mask(7, every=3).tolist() == [False, True, True, False, True, True, False]
    assert key_frame_mask(4, every=2, n=3).shape == (3, 4)
    video = moving_video.unsqueeze(0)
    assert torch.equal(
        TemporalDefense(key_every=3)(video), TemporalDefense()(video, polluted=key_frame_mask(8, every=3, n=1))
    )


def test_surrogates(moving_video):
    video = moving_video.unsqueeze(0).clone().requires_grad_(True)
    mask = torch.zeros(1, 8, dtype=torch.bool)
    mask[0, 3] = True
    ident = TemporalDefense()
    assert ident.differentiable is False and ident.surrogate(video, polluted=mask) is video
    pred = TemporalDefense(surrogate="prediction")
    out = pred.bpda(video, polluted=mask)
    assert torch.equal(out.detach(), pred(video.detach(), polluted=mask))
    out[0, 3].sum().backward()
    assert video.grad[0, 3].abs().sum() == 0  # the rebuilt frame's content comes from the references
    assert video.grad[0, [2, 4]].abs().sum() > 0


def test_rebuild_frames_one_sided(moving_video):
    """A frame rebuilt from one shifted neighbour: the motion-compensated blocks are exact copies
    wherever the neighbour holds the content (frame t+1 is frame t moved up 1 px, left 2 px), and
    at QP 0 the residual brings the whole frame back to within 1/255 of the truth."""
    cur = moving_video[1:2]
    from_next = rebuild_frames(cur, None, moving_video[2:3], residual=False)
    assert torch.equal(from_next[..., 8:, 8:], cur[..., 8:, 8:])  # blocks clear of the top / left edge
    from_prev = rebuild_frames(moving_video[2:3], moving_video[1:2], None, residual=False)
    assert torch.equal(from_prev[..., :24, :40], moving_video[2:3, :, :24, :40])  # clear of bottom / right
    out = rebuild_frames(cur, None, moving_video[2:3], qp=0)
    assert (out - cur).abs().max() <= 1 / 255 + 1e-6
    assert not torch.equal(from_next, cur)  # the edge blocks did need the residual


def test_errors(moving_video):
    video = moving_video.unsqueeze(0)
    with pytest.raises(ValueError, match="every frame is marked"):
        TemporalDefense()(video, polluted=torch.ones(1, 8, dtype=torch.bool))
    with pytest.raises(ValueError, match="polluted mask"):
        TemporalDefense()(video)
    with pytest.raises(ValueError, match=r"shape \(1, 8\)"):
        TemporalDefense()(video, polluted=torch.zeros(2, 8, dtype=torch.bool))
    with pytest.raises(ValueError, match="bool"):
        TemporalDefense()(video, polluted=torch.zeros(1, 8))
    with pytest.raises(ValueError, match="qp"):
        TemporalDefense(qp=60)
    with pytest.raises(ValueError, match="channels"):
        TemporalDefense(channels="yuv")
    with pytest.raises(ValueError, match=r"\(N, T, C, H, W\)"):
        TemporalDefense()(moving_video, polluted=torch.zeros(1, 8, dtype=torch.bool))
    with pytest.raises(ValueError, match="fewer flags"):
        list(defend_stream(iter(moving_video), [False], TemporalDefense()))
    with pytest.raises(ValueError, match="every frame of the stream"):
        list(defend_stream(iter(moving_video[:2]), [True, True], TemporalDefense()))

"""The uint8 path of the temporal defense (decoded frames, never converted to float) gives the float
path's frames rounded to 8 bits, bit for bit."""

import numpy as np
import pytest
import torch
from tests.conftest import make_moving_video

from vidshield.defenses import create_defense
from vidshield.defenses.temporal import defend_stream, rebuild_frames, rebuild_frames_uint8
from vidshield.video import frames_to_tensor, tensor_to_frames


def noisy_frames(frames=6, height=37, width=53, seed=0) -> np.ndarray:
    """Moving texture plus noise (an attacked look), uint8 (T, H, W, 3); sizes not multiples of 8."""
    video = make_moving_video(frames, height, width, dy=1, dx=-2, seed=seed)
    g = torch.Generator().manual_seed(seed)
    video = (video + 0.05 * torch.randn(video.shape, generator=g)).clamp(0, 1)
    return tensor_to_frames(video)


def float_path(cur, prev, nxt, **options) -> np.ndarray:
    p = cur.shape[0]
    refs = [None if r is None else frames_to_tensor(r[None]).expand(p, -1, -1, -1) for r in (prev, nxt)]
    return tensor_to_frames(rebuild_frames(frames_to_tensor(cur), *refs, **options))


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"channels": "rgb"},
        {"transform": 8},
        {"residual": False},
        {"method": "hexagon", "qp": 12},
        {"block": 16, "search": 3, "qp": 51},
        {"qp": 0},
        {"backend": "torch"},
    ],
)
@pytest.mark.parametrize("sides", ["both", "prev", "next"])
def test_uint8_rebuild_equals_the_float_path_rounded(options, sides):
    frames = noisy_frames()
    prev = frames[0] if sides != "next" else None
    nxt = frames[5] if sides != "prev" else None
    fast = rebuild_frames_uint8(frames[1:5], prev, nxt, **options)
    assert fast.dtype == np.uint8 and fast.shape == (4, 37, 53, 3)
    assert np.array_equal(fast, float_path(frames[1:5], prev, nxt, **options))
    assert not np.array_equal(fast, frames[1:5])  # it did rebuild


def test_uint8_rebuild_covers_every_level_and_residual():
    """Extreme content (all 256 levels, full-scale jumps) where the 8-bit clip matters."""
    g = np.random.default_rng(0)
    cur = g.integers(0, 256, (2, 32, 48, 3), dtype=np.uint8)
    cur[0, :16] = 255
    cur[1, 16:] = 0
    prev = g.integers(0, 256, (32, 48, 3), dtype=np.uint8)
    for qp in (0, 20, 36):
        assert np.array_equal(rebuild_frames_uint8(cur, prev, None, qp=qp), float_path(cur, prev, None, qp=qp))


def test_uint8_rebuild_rejects_float_frames():
    frames = noisy_frames()
    with pytest.raises(ValueError, match="uint8"):
        rebuild_frames_uint8(frames[1:2].astype(np.float32), frames[0], None)
    with pytest.raises(ValueError, match="reference"):
        rebuild_frames_uint8(frames[1:2], None, None)
    with pytest.raises(ValueError, match="size"):
        rebuild_frames_uint8(frames[1:2], frames[0, :8], None)


@pytest.mark.parametrize("bidirectional", [True, False])
def test_defend_stream_of_decoded_frames_equals_the_float_stream(bidirectional):
    frames = list(noisy_frames(frames=12))
    flags = [False, True, True, False, False, True, False, True, True, True, False, True]
    defense = create_defense("temporal", bidirectional=bidirectional)
    decoded = list(defend_stream(frames, flags, defense))
    floats = list(defend_stream(frames_to_tensor(np.stack(frames)).unbind(0), flags, defense))
    assert all(isinstance(f, np.ndarray) and f.dtype == np.uint8 for f in decoded)
    assert np.array_equal(np.stack(decoded), tensor_to_frames(torch.stack(floats)))
    clean = [i for i, f in enumerate(flags) if not f]
    assert all(decoded[i] is frames[i] for i in clean)  # clean frames pass through untouched


def test_defend_stream_refuses_mixed_frames():
    frames = noisy_frames()
    mixed = [frames[0], frames_to_tensor(frames[1:2])[0]]
    with pytest.raises(ValueError, match="differ"):
        list(defend_stream(mixed, [False, False], create_defense("temporal")))

"""ComDefend under a memory budget: fewer frames per pass, and frames larger than the budget in
overlapping tiles with full context (the whole-frame result up to float rounding)."""

import pytest
import torch

from vidshield.defenses.spatial.comdefend import (
    ACTIVATION_BYTES_PER_PIXEL,
    RECEPTIVE_RADIUS,
    ComDefend,
    SpatialDefense,
    purify_frames,
    purify_in_tiles,
)


@pytest.fixture
def model():
    torch.manual_seed(0)
    return ComDefend().eval()


def test_context_tiles_equal_the_whole_frame(model):
    assert RECEPTIVE_RADIUS == 18  # 18 convolutions of 3x3
    x = torch.rand(2, 3, 70, 101, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        whole = purify_frames(model, x)
        tiled = purify_in_tiles(model, x, max_pixels=(2 * RECEPTIVE_RADIUS + 20) ** 2)  # 20x20 cores
        independent = purify_frames(model, x, tile=32)  # the official tiles, without context
    assert (tiled - whole).abs().max() < 1e-5
    assert (independent - whole).abs().max() > 1e-3  # what the context is for (untrained: outputs near 0.5)


def test_budget_sets_frames_per_pass_and_tiles(model, monkeypatch):
    defense = SpatialDefense(model=model, memory_mb=64, dtype="float32")
    per_mb = (1 << 20) // ACTIVATION_BYTES_PER_PIXEL
    assert defense.frames_per_pass(32, 32) == min(64, 64 * per_mb // 1024)
    assert defense.frames_per_pass(1080, 1920) == 1  # over budget alone: tiles
    assert SpatialDefense(model=model, memory_mb=None).frames_per_pass(1080, 1920) == 64
    passes = []
    import vidshield.defenses.spatial.comdefend as comdefend

    def spy(m, frames, **kw):
        passes.append(tuple(frames.shape))
        return purify_in_tiles(m, frames, **kw)

    monkeypatch.setattr(comdefend, "purify_in_tiles", spy)
    monkeypatch.setattr(comdefend, "ACTIVATION_BYTES_PER_PIXEL", (64 << 20) // (60 * 60))  # budget: 60x60 px
    video = torch.rand(1, 3, 3, 90, 100, generator=torch.Generator().manual_seed(2))
    out = defense(video)
    assert passes == [(1, 3, 90, 100)] * 3  # one frame per pass, each in tiles
    with torch.no_grad():
        whole = purify_frames(model, video[0])
    assert (out[0] - whole).abs().max() < 1e-5


def test_estimate_scales_with_pixels(model):
    defense = SpatialDefense(model=model, dtype="float32")
    small, large = defense.estimate_seconds(1, 96, 96), defense.estimate_seconds(100, 960, 960)
    assert small > 0 and large / small == pytest.approx(10_000, rel=0.6)  # two timings of one pass

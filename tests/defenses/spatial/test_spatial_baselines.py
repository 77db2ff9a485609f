"""JPEG, median and bit-depth baselines: shape/range kept, the property each one has, errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vidshield.defenses.spatial import BitDepthDefense, JpegDefense, MedianDefense, psnr


@pytest.fixture
def smooth_video(rng) -> torch.Tensor:
    """(1, 4, 3, 32, 48): bilinearly upsampled random 4x6 grids, multiples of 1/255."""
    coarse = torch.rand(4, 3, 4, 6, generator=rng)
    frames = F.interpolate(coarse, size=(32, 48), mode="bilinear", align_corners=False)
    return ((frames * 255).round() / 255).unsqueeze(0)


@pytest.mark.parametrize("defense", [JpegDefense(), MedianDefense(), BitDepthDefense()], ids=repr)
def test_shape_range_kept_and_input_untouched(defense, smooth_video):
    before = smooth_video.clone()
    out = defense(smooth_video)
    assert out.shape == smooth_video.shape and out.dtype == torch.float32
    assert float(out.min()) >= 0 and float(out.max()) <= 1
    assert torch.equal(smooth_video, before)
    with pytest.raises(ValueError):
        defense(smooth_video[0])  # (T, C, H, W) is not a batch


def test_jpeg_quality_orders_the_error(smooth_video):
    high = JpegDefense(quality=95)(smooth_video)
    low = JpegDefense(quality=10)(smooth_video)
    frames = smooth_video[0]
    assert torch.equal((high * 255).round(), high * 255)  # decoded 8-bit values
    assert float(psnr(high[0], frames).mean()) > 35.0
    assert float(psnr(low[0], frames).mean()) < float(psnr(high[0], frames).mean()) - 3.0
    assert not JpegDefense.differentiable


def test_median_removes_an_impulse_and_keeps_constants():
    video = torch.full((1, 2, 3, 9, 11), 0.25)
    assert torch.equal(MedianDefense(kernel=3)(video), video)
    spiky = video.clone()
    spiky[0, 1, 2, 4, 5] = 1.0
    assert torch.equal(MedianDefense(kernel=3)(spiky), video)
    assert MedianDefense(kernel=1)(spiky).equal(spiky)


def test_median_is_differentiable(smooth_video):
    x = smooth_video.clone().requires_grad_(True)
    MedianDefense(kernel=3)(x).sum().backward()
    assert x.grad.abs().sum() > 0


@pytest.mark.parametrize("bits", [1, 3, 4])
def test_bit_depth_has_two_to_the_bits_levels(bits):
    ramp = torch.linspace(0, 1, 3 * 8 * 64).reshape(1, 1, 3, 8, 64)
    out = BitDepthDefense(bits=bits)(ramp)
    levels = out.unique()
    assert levels.numel() == 2**bits
    assert torch.allclose(levels, torch.arange(2**bits) / (2**bits - 1))
    assert (out - ramp).abs().max() <= 0.5 / (2**bits - 1) + 1e-6


def test_bit_depth_bpda_is_straight_through(smooth_video):
    x = smooth_video.clone().requires_grad_(True)
    defense = BitDepthDefense(bits=2)
    out = defense.bpda(x)
    assert torch.equal(out.detach(), defense(smooth_video))
    out.sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))


def test_parameter_errors():
    with pytest.raises(ValueError, match="quality"):
        JpegDefense(quality=0)
    with pytest.raises(ValueError, match="odd"):
        MedianDefense(kernel=4)
    with pytest.raises(ValueError, match="bits"):
        BitDepthDefense(bits=9)

"""H264Defense: libx264 re-encoding round trip."""

import pytest
import torch
from tests.conftest import make_moving_video

from vidshield.defenses.h264 import H264Defense


def psnr(a, b):
    return float(10 * torch.log10(1 / ((a - b) ** 2).mean()))


def grey(video):
    """Same texture in R, G and B: no chroma detail for 4:2:0 subsampling to lose."""
    return video[:, :, :1].expand_as(video).contiguous()


def test_shape_range_and_quality():
    video = grey(torch.stack([make_moving_video(frames=6, height=37, width=53, seed=s) for s in (0, 1)]))
    out = H264Defense(crf=18)(video)
    assert out.shape == video.shape and out.dtype == torch.float32
    assert float(out.min()) >= 0 and float(out.max()) <= 1
    assert psnr(out, video) > 35
    assert H264Defense.differentiable is False


def test_higher_crf_loses_more():
    video = make_moving_video(frames=6, height=32, width=48).unsqueeze(0)
    assert psnr(H264Defense(crf=45)(video), video) < psnr(H264Defense(crf=18)(video), video)


def test_errors():
    with pytest.raises(ValueError, match="crf"):
        H264Defense(crf=60)
    with pytest.raises(ValueError, match="preset"):
        H264Defense(preset="warp")

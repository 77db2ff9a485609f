"""Simple per-frame purification baselines for the comparison tables: JPEG, median filter, bit depth.

Each is a plain function on frames ``(N, 3, H, W)`` plus a thin :class:`Defense` over videos
``(N, T, 3, H, W)`` in [0, 1] that keeps shape, dtype and range and never modifies its input;
``polluted`` limits it to the marked frames, ``generator`` is ignored (all are deterministic).
"""

from __future__ import annotations

import io

import numpy as np
import torch
import torch.nn.functional as F

from vidshield.defenses.base import Defense, apply_to_marked
from vidshield.defenses.registry import register_defense
from vidshield.video import check_batch, to_uint8


def _per_frame(video: torch.Tensor, polluted: torch.Tensor | None, fn) -> torch.Tensor:
    """``fn(frames (M, 3, H, W)) -> same`` over the (marked) frames of a checked batch."""
    check_batch(video)
    return apply_to_marked(video, polluted, lambda v: fn(v.reshape(-1, *v.shape[2:])).reshape(v.shape))


def jpeg_frames(frames: torch.Tensor, *, quality: int = 75) -> torch.Tensor:
    """JPEG-encode and decode every frame in memory (Pillow, baseline JPEG, 4:2:0 chroma).

    Args:
        frames: ``(N, 3, H, W)`` in [0, 1].
        quality: JPEG quality 1..95 (Pillow's scale; 75 is its default).

    Returns:
        ``float32 (N, 3, H, W)`` in [0, 1] on ``frames``' device (values are multiples of 1/255).
    """
    from PIL import Image  # Pillow comes with matplotlib, a dependency

    out = []
    for frame in to_uint8(frames).permute(0, 2, 3, 1).cpu().numpy():
        buffer = io.BytesIO()
        Image.fromarray(frame).save(buffer, format="JPEG", quality=quality)
        buffer.seek(0)
        with Image.open(buffer) as decoded:
            out.append(np.asarray(decoded.convert("RGB")))
    decoded_frames = torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2)
    return decoded_frames.to(frames.device, torch.float32).div_(255.0)


def median_frames(frames: torch.Tensor, *, kernel: int = 3) -> torch.Tensor:
    """Per-channel ``kernel`` x ``kernel`` median filter (borders: replicated edge pixels).

    Differentiable: the gradient flows to the element selected as the median.

    Shape:
        ``(N, C, H, W)`` -> same.
    """
    pad = kernel // 2
    padded = F.pad(frames, (pad, pad, pad, pad), mode="replicate")
    windows = padded.unfold(2, kernel, 1).unfold(3, kernel, 1)  # (N, C, H, W, k, k)
    return windows.reshape(*frames.shape, kernel * kernel).median(dim=-1).values


def bit_depth(x: torch.Tensor, *, bits: int = 4) -> torch.Tensor:
    """Quantise values in [0, 1] to ``2**bits`` evenly spaced levels ``k / (2**bits - 1)``."""
    levels = 2**bits - 1
    return torch.round(x * levels) / levels


@register_defense("jpeg", quality=75)
class JpegDefense(Defense):
    """JPEG compression of every frame (Dziugaite et al. 2016; Das et al. 2017).

    Not differentiable; the BPDA surrogate is the identity (JPEG approximately preserves the
    image). Runs on the CPU (frames are copied there and back).

    Args:
        quality: JPEG quality in [1, 95] (default 75).

    Shape:
        ``(N, T, 3, H, W)`` in [0, 1] -> same.
    """

    differentiable = False
    frame_wise = True

    def __init__(self, *, quality: int = 75):
        super().__init__()
        if not isinstance(quality, int) or not 1 <= quality <= 95:
            raise ValueError(f"quality must be an int in [1, 95], got {quality!r}")
        self.quality = quality

    def extra_repr(self) -> str:
        return f"quality={self.quality}"

    def forward(self, video: torch.Tensor, *, polluted=None, generator=None) -> torch.Tensor:
        return _per_frame(video, polluted, lambda f: jpeg_frames(f, quality=self.quality).to(video.dtype))


@register_defense("median", kernel=3)
class MedianDefense(Defense):
    """Median filter of every frame and channel (Xu et al. 2018, feature squeezing).

    Args:
        kernel: odd window side (default 3).

    Shape:
        ``(N, T, 3, H, W)`` in [0, 1] -> same.
    """

    differentiable = True
    frame_wise = True

    def __init__(self, *, kernel: int = 3):
        super().__init__()
        if not isinstance(kernel, int) or kernel < 1 or kernel % 2 == 0:
            raise ValueError(f"kernel must be an odd positive int, got {kernel!r}")
        self.kernel = kernel

    def extra_repr(self) -> str:
        return f"kernel={self.kernel}"

    def forward(self, video: torch.Tensor, *, polluted=None, generator=None) -> torch.Tensor:
        return _per_frame(video, polluted, lambda f: median_frames(f, kernel=self.kernel))


@register_defense("bitdepth", bits=4)
class BitDepthDefense(Defense):
    """Colour bit-depth reduction to ``bits`` per channel (Xu et al. 2018, feature squeezing).

    Not differentiable (rounding); the BPDA surrogate is the identity (straight-through).

    Args:
        bits: bits per channel in [1, 8] (default 4: 16 levels).

    Shape:
        ``(N, T, 3, H, W)`` in [0, 1] -> same, values in ``{k / (2**bits - 1)}``.
    """

    differentiable = False
    frame_wise = True

    def __init__(self, *, bits: int = 4):
        super().__init__()
        if not isinstance(bits, int) or not 1 <= bits <= 8:
            raise ValueError(f"bits must be an int in [1, 8], got {bits!r}")
        self.bits = bits

    def extra_repr(self) -> str:
        return f"bits={self.bits}"

    def forward(self, video: torch.Tensor, *, polluted=None, generator=None) -> torch.Tensor:
        return _per_frame(video, polluted, lambda f: bit_depth(f, bits=self.bits))

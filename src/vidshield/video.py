"""The tensor contract, in one place.

A video batch is ``float32 (N, T, C, H, W)``, RGB (C = 3), values in [0, 1]. A single video is
``(T, C, H, W)``. Frames on disk and in integer-domain code are ``uint8 (T, H, W, 3)`` (the
layout PyAV and numpy use). Perturbation budgets are on the [0, 1] scale (``10/255``).

Every public entry point that takes a video calls :func:`check_video` (or :func:`check_batch`)
and gets a ``ValueError`` that names the expected shape and range. Nothing here guesses the
value range from the data: conversions are explicit.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = [
    "check_video",
    "check_batch",
    "check_labels",
    "check_frame_mask",
    "to_float",
    "to_uint8",
    "frames_to_tensor",
    "tensor_to_frames",
    "as_batch",
    "rgb_to_luma",
]

_RANGE_TOL = 1e-6


def _describe(x: torch.Tensor) -> str:
    return f"dtype={x.dtype}, shape={tuple(x.shape)}"


def check_video(video: torch.Tensor, *, name: str = "video", check_range: bool = True) -> torch.Tensor:
    """Check one float video ``(T, C, H, W)`` or a batch ``(N, T, C, H, W)``.

    Args:
        video: the tensor to check.
        name: how the error message names it.
        check_range: also check that values lie in [0, 1] (costs one pass over the data).

    Returns:
        ``video`` itself, unchanged.

    Raises:
        ValueError: wrong type, dtype, rank, channel count, empty dimension or range.
    """
    if not isinstance(video, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(video).__name__}")
    if video.dim() not in (4, 5):
        raise ValueError(
            f"{name} must be float (N, T, C, H, W) or (T, C, H, W) with values in [0, 1]; got {_describe(video)}"
        )
    if not video.is_floating_point():
        raise ValueError(
            f"{name} must be a floating-point tensor in [0, 1] (use vidshield.video.to_float for uint8); "
            f"got {_describe(video)}"
        )
    if video.shape[-3] != 3:
        raise ValueError(f"{name} must have 3 RGB channels at dim -3 (layout ...T, C, H, W); got {_describe(video)}")
    if any(s == 0 for s in video.shape):
        raise ValueError(f"{name} has an empty dimension: {_describe(video)}")
    if check_range:
        lo, hi = (float(v) for v in torch.aminmax(video.detach()))
        if lo < -_RANGE_TOL or hi > 1 + _RANGE_TOL or not (np.isfinite(lo) and np.isfinite(hi)):
            raise ValueError(f"{name} values must lie in [0, 1]; found min {lo:.4g}, max {hi:.4g}")
    return video


def check_batch(video: torch.Tensor, *, name: str = "video", check_range: bool = True) -> torch.Tensor:
    """Like :func:`check_video` but requires the batched layout ``(N, T, C, H, W)``."""
    check_video(video, name=name, check_range=check_range)
    if video.dim() != 5:
        raise ValueError(
            f"{name} must be a batch (N, T, C, H, W); got {_describe(video)} (add a batch dim with as_batch)"
        )
    return video


def check_labels(labels: torch.Tensor, n: int, *, num_classes: int | None = None, name: str = "labels") -> torch.Tensor:
    """Check integer labels ``int64 (N,)`` for a batch of ``n`` videos, optionally < ``num_classes``."""
    if not isinstance(labels, torch.Tensor) or labels.dtype not in (torch.int64, torch.int32):
        raise ValueError(f"{name} must be an int64 tensor (N,), got {labels!r:.80}")
    if labels.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},) to match the batch, got {tuple(labels.shape)}")
    if num_classes is not None and n and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise ValueError(f"{name} must lie in [0, {num_classes}); got min {int(labels.min())}, max {int(labels.max())}")
    return labels


def check_frame_mask(mask: torch.Tensor, n: int, t: int, *, name: str = "mask") -> torch.Tensor:
    """Check a boolean per-frame mask ``(N, T)``."""
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
        raise ValueError(f"{name} must be a bool tensor (N, T)")
    if tuple(mask.shape) != (n, t):
        raise ValueError(f"{name} must have shape ({n}, {t}), got {tuple(mask.shape)}")
    return mask


def as_batch(video: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """Return ``(batch, was_single)``: a (T, C, H, W) video gets a leading batch dim of 1."""
    check_video(video, check_range=False)
    if video.dim() == 4:
        return video.unsqueeze(0), True
    return video, False


def to_float(frames: torch.Tensor) -> torch.Tensor:
    """uint8 in [0, 255] -> float32 in [0, 1], same layout."""
    if frames.dtype != torch.uint8:
        raise ValueError(f"to_float expects uint8 frames, got {frames.dtype}")
    return frames.to(torch.float32).div_(255.0)


def to_uint8(video: torch.Tensor) -> torch.Tensor:
    """float in [0, 1] -> uint8 in [0, 255], rounding to nearest (values outside [0, 1] are clipped)."""
    if not video.is_floating_point():
        raise ValueError(f"to_uint8 expects a float tensor in [0, 1], got {video.dtype}")
    return video.detach().mul(255.0).round_().clamp_(0, 255).to(torch.uint8)


def frames_to_tensor(frames: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 frames ``(T, H, W, 3)`` (numpy or torch) -> float32 video ``(T, 3, H, W)`` in [0, 1]."""
    t = torch.from_numpy(np.ascontiguousarray(frames)) if isinstance(frames, np.ndarray) else frames
    if t.dtype != torch.uint8 or t.dim() != 4 or t.shape[-1] != 3:
        raise ValueError(f"frames must be uint8 (T, H, W, 3); got dtype={t.dtype}, shape={tuple(t.shape)}")
    return to_float(t.permute(0, 3, 1, 2).contiguous())


def tensor_to_frames(video: torch.Tensor) -> np.ndarray:
    """float32 video ``(T, 3, H, W)`` in [0, 1] -> uint8 numpy frames ``(T, H, W, 3)``."""
    check_video(video, check_range=False)
    if video.dim() != 4:
        raise ValueError(f"tensor_to_frames takes one video (T, C, H, W); got shape {tuple(video.shape)}")
    return to_uint8(video).permute(0, 2, 3, 1).contiguous().cpu().numpy()


# ITU-R BT.601 luma weights.
_BT601 = (0.299, 0.587, 0.114)


def rgb_to_luma(video: torch.Tensor) -> torch.Tensor:
    """BT.601 luma of RGB frames: ``(..., 3, H, W)`` -> ``(..., H, W)``, same dtype and scale."""
    if video.dim() < 3 or video.shape[-3] != 3:
        raise ValueError(f"rgb_to_luma expects (..., 3, H, W), got shape {tuple(video.shape)}")
    r, g, b = video.unbind(-3)
    return _BT601[0] * r + _BT601[1] * g + _BT601[2] * b

"""A safetensors container for clip sets (videos + labels + metadata).

Layout of the file: tensor ``videos`` ``(N, T, 3, H, W)`` and tensor ``labels`` int64 ``(N,)``;
the header metadata holds ``vidshield.clips`` = the user's metadata as a JSON string and
``vidshield.videos_dtype``. Videos are stored as uint8 (levels 0..255) whenever that is exact:
uint8 input, or float input whose every value is a multiple of 1/255 (as decoded video is).
Otherwise they are stored as float32, so nothing is ever rounded on save.
:func:`load_clips` always returns float32 in [0, 1].
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save

from vidshield.errors import InputFormatError, VideoDecodeError
from vidshield.jsonio import parse_json
from vidshield.utils import atomic_write_bytes
from vidshield.video import check_batch, check_labels, to_float, to_uint8

__all__ = ["save_clips", "load_clips"]

_META_KEY = "vidshield.clips"
_DTYPE_KEY = "vidshield.videos_dtype"


def save_clips(
    path: str | os.PathLike, videos: torch.Tensor, labels: torch.Tensor, metadata: dict | None = None
) -> Path:
    """Save a clip set atomically.

    Args:
        path: output file (``.safetensors`` by convention).
        videos: float32 ``(N, T, 3, H, W)`` in [0, 1], or uint8 ``(N, T, 3, H, W)``.
        labels: int64 ``(N,)``.
        metadata: JSON-serialisable dict (class names, source, attack settings ...).

    Returns:
        The path written.
    """
    if not isinstance(videos, torch.Tensor):
        raise ValueError(f"videos must be a torch.Tensor (N, T, 3, H, W), got {type(videos).__name__}")
    if videos.dtype == torch.uint8:
        if videos.dim() != 5 or videos.shape[2] != 3:
            raise ValueError(f"uint8 videos must be (N, T, 3, H, W), got shape {tuple(videos.shape)}")
        stored = videos
    else:
        check_batch(videos, name="videos")
        levels = to_uint8(videos)
        stored = levels if torch.equal(to_float(levels), videos.float()) else videos.float()
    check_labels(labels, stored.shape[0])
    try:
        meta_json = json.dumps(metadata or {}, sort_keys=True)
    except (TypeError, ValueError) as e:
        raise ValueError(f"metadata must be JSON-serialisable: {e}") from e
    data = save(
        {"videos": stored.detach().cpu().contiguous(), "labels": labels.detach().cpu().to(torch.int64).contiguous()},
        metadata={_META_KEY: meta_json, _DTYPE_KEY: str(stored.dtype).removeprefix("torch.")},
    )
    return atomic_write_bytes(path, data)


def load_clips(path: str | os.PathLike) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """Load a clip set written by :func:`save_clips`.

    Returns:
        ``(videos, labels, metadata)``: float32 ``(N, T, 3, H, W)`` in [0, 1], int64 ``(N,)``, dict.

    Raises:
        VideoDecodeError: missing file or not a clip container.
    """
    p = Path(path)
    if not p.is_file():
        raise VideoDecodeError(p, "no such clip file")
    try:
        with safe_open(str(p), framework="pt") as f:
            header_meta = f.metadata() or {}
            names = set(f.keys())
            if _META_KEY not in header_meta or names != {"videos", "labels"}:
                raise VideoDecodeError(p, f"safetensors file is not a vidshield clip set (tensors: {sorted(names)})")
            videos, labels = f.get_tensor("videos"), f.get_tensor("labels")
    except (SafetensorError, ValueError, OSError) as e:
        raise VideoDecodeError(p, f"not a safetensors clip container ({e})") from e
    try:
        metadata = parse_json(header_meta[_META_KEY], what="its metadata")
    except InputFormatError as e:
        raise VideoDecodeError(p, str(e)) from None
    if videos.dim() != 5 or videos.shape[2] != 3 or labels.shape != (videos.shape[0],):
        raise VideoDecodeError(
            p, f"clip set has inconsistent shapes: videos {tuple(videos.shape)}, labels {tuple(labels.shape)}"
        )
    videos = to_float(videos) if videos.dtype == torch.uint8 else videos.to(torch.float32)
    return videos, labels.to(torch.int64), metadata

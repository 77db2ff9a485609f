"""A disk cache of decoded, resized frames, so an epoch does not decode every video again.

Entries are ``uint8 (T, H, W, 3)`` safetensors files under ``root/<2 hex>/<key>.safetensors``.
The key hashes the video's absolute path, modification time and size together with how the
frames were decoded (frame count, sampling, spatial size), so an edited video or another
decoding gets a new entry. Writes are atomic; an entry that cannot be read back (truncated,
corrupt, wrong key) is rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as save_safetensors

from vidshield.utils import atomic_write_bytes

__all__ = ["FrameCache"]

_TENSOR = "frames"


class FrameCache:
    """Decoded frames on disk, keyed by (video file identity, decoding spec).

    Args:
        root: cache folder (created on first write).

    Example:
        >>> cache = FrameCache("/tmp/frames")
        >>> frames = cache.get_or_create("clip.avi", {"frames": 16, "size": [112, 112]}, decode)
    """

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def key(self, path: str | os.PathLike, spec: dict) -> str:
        """Hex key of ``path`` (absolute path, mtime, size) decoded with ``spec`` (JSON-able)."""
        path = Path(path).resolve()
        stat = path.stat()
        ident = {"path": str(path), "mtime_ns": stat.st_mtime_ns, "bytes": stat.st_size, "spec": spec}
        return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()

    def entry_path(self, key: str) -> Path:
        """Where the entry of ``key`` is stored."""
        return self.root / key[:2] / f"{key}.safetensors"

    def load(self, key: str) -> torch.Tensor | None:
        """The cached ``uint8 (T, H, W, 3)`` frames of ``key``, or None if absent or unreadable."""
        entry = self.entry_path(key)
        if not entry.is_file():
            return None
        try:
            with safe_open(str(entry), framework="pt") as f:
                if (f.metadata() or {}).get("key") != key or list(f.keys()) != [_TENSOR]:
                    return None
                frames = f.get_tensor(_TENSOR)
        except (SafetensorError, OSError, ValueError, RuntimeError):
            return None  # truncated or corrupt: the caller rebuilds it
        if frames.dtype != torch.uint8 or frames.dim() != 4 or frames.shape[-1] != 3:
            return None
        return frames

    def store(self, key: str, frames: torch.Tensor, *, source: str = "") -> Path:
        """Write ``uint8 (T, H, W, 3)`` frames atomically; returns the entry path."""
        if frames.dtype != torch.uint8 or frames.dim() != 4 or frames.shape[-1] != 3:
            raise ValueError(f"cache entries are uint8 (T, H, W, 3); got {frames.dtype} {tuple(frames.shape)}")
        data = save_safetensors({_TENSOR: frames.contiguous()}, metadata={"key": key, "source": source})
        return atomic_write_bytes(self.entry_path(key), data)

    def get_or_create(self, path: str | os.PathLike, spec: dict, build: Callable[[], torch.Tensor]) -> torch.Tensor:
        """Cached frames of ``path`` decoded with ``spec``; on a miss (or a corrupt entry) call
        ``build()`` for ``uint8 (T, H, W, 3)`` frames, store and return them."""
        key = self.key(path, spec)
        frames = self.load(key)
        if frames is None:
            frames = build()
            self.store(key, frames, source=str(path))
        return frames

    def __repr__(self) -> str:
        return f"FrameCache({str(self.root)!r})"

"""Checkpoints: ``NAME.safetensors`` (tensors) + ``NAME.json`` (metadata) side by side.

Never unpickles anything: safetensors holds only tensors, JSON holds the rest. Both files are
written atomically.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from vidshield.errors import CheckpointError
from vidshield.jsonio import read_json
from vidshield.text import printable
from vidshield.utils import atomic_write_bytes, atomic_write_json


def checkpoint_paths(path: str | Path) -> tuple[Path, Path]:
    """``x``, ``x.safetensors`` or ``x.json`` -> (``x.safetensors``, ``x.json``)."""
    path = Path(path)
    if path.suffix in (".safetensors", ".json"):
        path = path.with_suffix("")
    return path.with_name(path.name + ".safetensors"), path.with_name(path.name + ".json")


def save_checkpoint(path: str | Path, state: dict[str, torch.Tensor], metadata: dict) -> Path:
    """Save a state dict and its metadata. Returns the ``.safetensors`` path."""
    weights, meta = checkpoint_paths(path)
    tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    atomic_write_bytes(weights, save(tensors))
    atomic_write_json(meta, metadata)
    return weights


def load_checkpoint(path: str | Path, *, device: str | torch.device = "cpu") -> tuple[dict[str, torch.Tensor], dict]:
    """Load ``(state_dict, metadata)``; raises :class:`CheckpointError` with the reason."""
    weights, meta = checkpoint_paths(path)
    if not weights.is_file():
        raise CheckpointError(f"checkpoint weights not found: {weights}")
    if not meta.is_file():
        raise CheckpointError(f"checkpoint metadata not found: {meta} (expected next to {weights.name})")
    metadata = read_json(meta, what=f"checkpoint metadata {printable(meta)}", error=CheckpointError)
    try:
        state = load_file(str(weights), device=str(device))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"checkpoint {weights} is corrupt or not a safetensors file: {e}") from e
    return state, metadata

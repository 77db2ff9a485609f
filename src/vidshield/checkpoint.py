"""Checkpoints: ``NAME.safetensors`` (tensors) + ``NAME.json`` (metadata) side by side, and the
one format of resumable training states built on them (``NAME-last.*``).

Never unpickles anything: safetensors holds only tensors, JSON holds the rest. Both files are
written atomically.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from vidshield.errors import CheckpointError
from vidshield.jsonio import field, read_json
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


# --- resumable training state ------------------------------------------------------------------

TRAINING_STATE_FORMAT = "vidshield-training-state/1"


def last_state_path(out: str | Path) -> Path:
    """``runs/x`` (or ``runs/x.safetensors``) -> ``runs/x-last.safetensors``: the resumable training
    state kept next to the best weights."""
    weights, _ = checkpoint_paths(out)
    return weights.with_name(weights.name.removesuffix(".safetensors") + "-last.safetensors")


def _flatten_optimizer(state_dict: dict) -> tuple[dict[str, torch.Tensor], dict]:
    """An optimizer ``state_dict`` -> tensors ``optimizer.state.<param id>.<name>`` and a JSON rest
    (the non-tensor values, the tensor names, ``param_groups``)."""
    tensors: dict[str, torch.Tensor] = {}
    plain: dict[str, dict] = {}
    tensor_names: dict[str, list[str]] = {}
    for param_id, values in state_dict["state"].items():
        key = str(param_id)
        plain[key], tensor_names[key] = {}, []
        for name, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer.state.{key}.{name}"] = value
                tensor_names[key].append(name)
            else:
                plain[key][name] = value
    meta = {"state": plain, "tensor_names": tensor_names, "param_groups": state_dict["param_groups"]}
    return tensors, json.loads(json.dumps(meta))


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict, *, like: dict) -> dict:
    """Inverse of :func:`_flatten_optimizer`. ``like`` is the optimizer's current ``state_dict``,
    used to restore tuples (Adam's ``betas``) that JSON turned into lists."""
    state = {}
    for key, names in meta["tensor_names"].items():
        values = dict(meta["state"].get(key, {}))
        for name in names:
            full = f"optimizer.state.{key}.{name}"
            if full not in tensors:
                raise CheckpointError(f"training state lacks optimizer tensor {full}")
            values[name] = tensors[full]
        state[int(key)] = values
    if len(meta["param_groups"]) != len(like["param_groups"]):
        raise CheckpointError("training state has a different number of optimizer parameter groups")
    groups = [
        {k: tuple(v) if isinstance(fresh.get(k), tuple) else v for k, v in saved.items()}
        for saved, fresh in zip(meta["param_groups"], like["param_groups"])
    ]
    return {"state": state, "param_groups": groups}


def save_training_state(
    path: str | Path,
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler=None,
    generators: dict[str, torch.Generator] | None = None,
    metadata: dict,
) -> Path:
    """Save what a run needs to continue exactly: the weights (``model.*``), the optimizer state
    (``optimizer.state.*`` tensors, the rest as JSON), the scheduler state (JSON), the random
    generators (``rng.<name>``) and ``metadata`` (epoch or step, history, settings ...).

    Returns:
        The ``.safetensors`` path.
    """
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    optim_tensors, optim_meta = _flatten_optimizer(optimizer.state_dict())
    tensors.update(optim_tensors)
    tensors.update({f"rng.{name}": g.get_state() for name, g in (generators or {}).items()})
    meta = {"format": TRAINING_STATE_FORMAT, **metadata, "optimizer": optim_meta}
    if scheduler is not None:
        meta["scheduler"] = json.loads(json.dumps(scheduler.state_dict()))
    return save_checkpoint(path, tensors, meta)


def load_training_state(
    path: str | Path,
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler=None,
    generators: dict[str, torch.Generator] | None = None,
    check: Callable[[dict], None] | None = None,
) -> dict:
    """Restore a state saved by :func:`save_training_state` into ``model``, ``optimizer``,
    ``scheduler`` and ``generators`` (in place), after ``check(metadata)`` has accepted the
    metadata (it raises :class:`CheckpointError` for a run made with other settings).

    Returns:
        The metadata.

    Raises:
        CheckpointError: not a training state, refused by ``check``, or a state that does not
            fit the model, optimizer, scheduler or generators given.
    """
    tensors, meta = load_checkpoint(path)
    if meta.get("format") != TRAINING_STATE_FORMAT:
        raise CheckpointError(f"{path} is not a training state (format {printable(repr(meta.get('format')))[:60]})")
    if check is not None:
        check(meta)
    what = dict(what=f"training state {printable(path)}", error=CheckpointError)
    optimizer_meta = field(meta, "optimizer", dict, **what)
    for key in ("state", "tensor_names"):
        field(optimizer_meta, key, dict, **what)
    field(optimizer_meta, "param_groups", list, items=dict, **what)
    try:
        model.load_state_dict({k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")})
        optimizer.load_state_dict(_unflatten_optimizer(tensors, optimizer_meta, like=optimizer.state_dict()))
        if scheduler is not None:
            scheduler.load_state_dict(field(meta, "scheduler", dict, **what))
        for name, generator in (generators or {}).items():
            if f"rng.{name}" not in tensors:
                raise CheckpointError(f"training state lacks the random generator state rng.{name}")
            generator.set_state(tensors[f"rng.{name}"])
    except (RuntimeError, KeyError, ValueError, TypeError, AttributeError) as e:
        raise CheckpointError(f"cannot resume from {printable(path)}: {printable(e)}") from e
    return meta

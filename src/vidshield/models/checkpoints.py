"""Model checkpoints: ``save_model`` / ``load_model`` on top of :mod:`vidshield.checkpoint`
(safetensors weights + JSON metadata; nothing is ever unpickled), and the shipped models in
``vidshield/zoo/``.

The metadata names the architecture and its constructor overrides, so :func:`load_model`
rebuilds the model before loading the weights, and checks that the weights fit it.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import torch

from vidshield import __version__
from vidshield.checkpoint import checkpoint_paths, load_checkpoint, save_checkpoint
from vidshield.errors import CheckpointError
from vidshield.jsonio import field, read_json
from vidshield.models.base import InputSpec, VideoClassifier
from vidshield.models.registry import MODEL_REGISTRY, create_model
from vidshield.text import printable

MODEL_FORMAT = "vidshield-model/1"


def model_metadata(model: VideoClassifier) -> dict:
    """The metadata that rebuilds ``model``: format, architecture, overrides, classes, spec, versions."""
    if model.arch_name is None:
        raise ValueError("only models built with create_model (arch_name set) can be saved")
    return {
        "format": MODEL_FORMAT,
        "architecture": model.arch_name,
        "arch_config": json.loads(json.dumps(model.arch_config or {})),
        "num_classes": model.num_classes,
        "class_names": list(model.class_names) if model.class_names is not None else None,
        "input_spec": model.input_spec.to_dict(),
        "num_parameters": sum(p.numel() for p in model.parameters()),
        "torch_version": torch.__version__,
        "vidshield_version": __version__,
    }


def save_model(model: VideoClassifier, path: str | Path, *, metadata: dict | None = None) -> Path:
    """Save ``model`` as ``path.safetensors`` + ``path.json``.

    Args:
        model: a model from :func:`create_model` (or :func:`load_model`).
        path: ``x``, ``x.safetensors`` or ``x.json``.
        metadata: extra JSON-compatible fields (dataset, metrics, seed, command, class_names...).
            ``class_names`` here overrides ``model.class_names``.

    Returns:
        The ``.safetensors`` path.
    """
    meta = {**model_metadata(model), **(metadata or {})}
    names = meta.get("class_names")
    if names is not None and len(names) != model.num_classes:
        raise ValueError(f"{len(names)} class names given for a model with {model.num_classes} classes")
    return save_checkpoint(path, model.state_dict(), meta)


def zoo_dir() -> Path:
    """The folder of shipped checkpoints inside the installed package."""
    return Path(str(resources.files("vidshield").joinpath("zoo")))


def list_shipped() -> list[dict]:
    """The shipped checkpoints: name, architecture, classes, input spec, data set, metrics, path."""
    rows = []
    folder = zoo_dir()
    for meta_path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        weights, _ = checkpoint_paths(meta_path)
        if not weights.is_file():
            continue
        meta = read_json(meta_path, error=CheckpointError)
        if meta.get("format") != MODEL_FORMAT:  # e.g. a resumable training state
            continue
        rows.append(
            {
                "name": meta_path.stem,
                "architecture": meta.get("architecture"),
                "num_classes": meta.get("num_classes"),
                "class_names": meta.get("class_names"),
                "input_spec": meta.get("input_spec"),
                "dataset": meta.get("dataset"),
                "metrics": meta.get("metrics", {}),
                "command": meta.get("command"),
                "path": str(weights),
                "size_bytes": weights.stat().st_size,
            }
        )
    return rows


def resolve_artifact(ref: str | Path, *, kind: str, hint: str = "") -> Path:
    """The one name-or-path resolver of checkpoints (models, ComDefend weights, universal
    perturbations): ``ref`` -> its ``.safetensors`` path.

    ``ref`` is a path (``x``, ``x.safetensors`` or ``x.json``; an existing file wins), else a bare
    name of a checkpoint shipped in :func:`zoo_dir` (``synthetic-lrcn``, ``comdefend``).

    Args:
        kind: what is looked for, for the error message ("model", "ComDefend weights" ...).
        hint: a sentence appended to the error (e.g. how to make the missing file).

    Raises:
        CheckpointError: nothing found; the message lists every path tried and the zoo's names.
    """
    weights, meta = checkpoint_paths(ref)
    if weights.is_file() or meta.is_file():
        return weights
    tried = [weights, meta]
    if len(Path(ref).parts) == 1 and not Path(ref).is_absolute():  # a bare name: look in the zoo
        shipped_weights, _ = checkpoint_paths(zoo_dir() / str(ref))
        if shipped_weights.is_file():
            return shipped_weights
        tried.append(shipped_weights)
    folder = zoo_dir()
    names = sorted(p.stem for p in folder.glob("*.safetensors")) if folder.is_dir() else []
    raise CheckpointError(
        f"{kind} {printable(str(ref))!r} not found: tried {', '.join(printable(p) for p in tried)} "
        f"(shipped: {', '.join(names) or 'none'})" + (f". {hint}" if hint else "")
    )


#: Largest class count a checkpoint may declare.
MAX_CLASSES = 100_000


def _describe(meta: dict) -> str:
    return f"{printable(meta.get('architecture'))} with {printable(meta.get('num_classes'))} classes"


def _show(value) -> str:
    text = printable(repr(value))
    return text if len(text) <= 60 else text[:57] + "..."


def _input_spec(d: dict, what: str) -> InputSpec:
    check = dict(what=what, error=CheckpointError)
    spec = {k: field(d, k, int, lo=1, hi=1 << 20, **check) for k in ("frames", "height", "width")}
    for k in ("mean", "std"):
        if k in d:
            spec[k] = field(d, k, list, max_len=3, items=float, **check)
    return InputSpec.from_dict(spec)


def load_model(name_or_path: str | Path, *, device: str | torch.device = "cpu") -> VideoClassifier:
    """Rebuild a model from a checkpoint and load its weights, in eval mode.

    Args:
        name_or_path: a shipped name (see :func:`list_shipped`) or a checkpoint path.
        device: where to put the model.

    Returns:
        The model with ``class_names`` and ``metadata`` (the checkpoint's JSON) attached.

    Raises:
        CheckpointError: missing, corrupt, not a model checkpoint, or weights that do not fit the
            architecture named in the metadata (the message says which keys or shapes differ).
    """
    weights = resolve_artifact(name_or_path, kind="model")
    state, meta = load_checkpoint(weights)
    if meta.get("format") != MODEL_FORMAT:
        raise CheckpointError(
            f"{weights} is not a vidshield model checkpoint (format {_show(meta.get('format'))}, expected {MODEL_FORMAT!r})"
        )
    what = f"checkpoint metadata {weights.with_suffix('.json')}"
    check = dict(what=what, error=CheckpointError)
    arch = field(meta, "architecture", str, max_len=100, **check)
    if arch not in MODEL_REGISTRY:
        raise CheckpointError(
            f"{weights}: unknown architecture {_show(arch)}; registered: {', '.join(sorted(MODEL_REGISTRY))}"
        )
    num_classes = field(meta, "num_classes", int, lo=1, hi=MAX_CLASSES, **check)
    arch_config = field(meta, "arch_config", dict, default={}, max_len=64, **check)
    names = field(meta, "class_names", (list, type(None)), max_len=MAX_CLASSES, items=str, **check)
    field(meta, "input_spec", dict, default={}, **check)
    # defaults of a detector built on this model (vidshield.detection.model_vote_default,
    # model_squeeze_default, model_default_network)
    section = field(meta, "detector", dict, default={}, **check)
    field(section, "vote", bool, default=None, what=f"{what} (detector)", error=CheckpointError)
    field(section, "squeeze_check", bool, default=None, what=f"{what} (detector)", error=CheckpointError)
    field(section, "network", str, default=None, max_len=4096, what=f"{what} (detector)", error=CheckpointError)
    try:
        # the architecture is first built without memory ("meta" tensors) and checked against the
        # weights in the file, so metadata asking for a huge model costs nothing
        with torch.device("meta"):
            skeleton = create_model(arch, num_classes=num_classes, **arch_config)
    except (KeyError, ValueError, TypeError, RuntimeError, OverflowError, NotImplementedError) as e:
        raise CheckpointError(f"{weights}: cannot rebuild {_describe(meta)}: {printable(e)}") from e
    expected = skeleton.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong_shape = [
        f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    if missing or unexpected or wrong_shape:
        parts = []
        if missing:
            parts.append(f"missing keys {missing[:5]}" + (f" (+{len(missing) - 5} more)" if len(missing) > 5 else ""))
        if unexpected:
            parts.append(
                f"unexpected keys {unexpected[:5]}" + (f" (+{len(unexpected) - 5} more)" if len(unexpected) > 5 else "")
            )
        if wrong_shape:
            parts.append(f"shape mismatch (file vs model): {', '.join(wrong_shape[:5])}")
        raise CheckpointError(f"weights in {weights} do not fit {_describe(meta)}: " + "; ".join(parts))
    model = create_model(arch, num_classes=num_classes, **arch_config)
    if "input_spec" in meta and _input_spec(meta["input_spec"], what) != model.input_spec:
        raise CheckpointError(
            f"{weights}: metadata input spec {meta['input_spec']} differs from the rebuilt model's {model.input_spec.to_dict()}"
        )
    if names is not None and len(names) != model.num_classes:
        raise CheckpointError(f"{weights}: {len(names)} class names for {_describe(meta)}")
    model.load_state_dict(state)
    model.class_names = list(names) if names is not None else None
    model.metadata = meta
    return model.to(device).eval()

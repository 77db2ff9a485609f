"""Any video classifier in: wrap a ``torch.nn.Module`` or load a TorchScript file as a
:class:`~vidshield.models.base.VideoClassifier`, and give every model its own view of a video.

:func:`wrap_classifier` takes the module and what it expects: its input layout (``NCTHW`` as most
3D CNNs take it, ``NTCHW`` as Hugging Face video models take it), clip length, frame size,
normalisation and class names. The wrapper takes vidshield's ``float32 (N, T, 3, H, W)`` in
[0, 1], normalises, permutes, calls the module and returns logits ``(N, K)``.

Hugging Face video models (VideoMAE, TimeSformer, ViViT) take ``pixel_values`` of shape
``(N, T, 3, H, W)``, normalised with the processor's mean/std, and return an object with
``.logits``; they wrap as::

    from transformers import VideoMAEForVideoClassification, VideoMAEImageProcessor
    hf = VideoMAEForVideoClassification.from_pretrained(path).eval()
    proc = VideoMAEImageProcessor.from_pretrained(path)
    clf = wrap_classifier(
        hf, layout="NTCHW", frames=hf.config.num_frames, height=224, width=224,
        mean=proc.image_mean, std=proc.image_std,
        class_names=[hf.config.id2label[i] for i in range(hf.config.num_labels)],
    )  # output="logits" (the default) reads .logits

A module whose forward takes a dict (``forward(batch)`` reading ``batch["video"]``) wraps with
``input_key="video"``; any other output is read with ``output=lambda out: ...``.

:func:`load_classifier` loads from the command line: a shipped name or vidshield checkpoint, or a
TorchScript archive (``torch.jit.save``; the one ``.pt`` format that is not a pickle) whose spec
comes from ``--input-spec`` or a JSON beside it. Every other file (a pickled module, a plain
state dict) is refused: nothing is ever unpickled.

:func:`resample_video` gives a model its own view (frames resampled in time, resized in space) and
:func:`classifier_hash` names a classifier's weights (a detector records the hash it serves).
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from vidshield.errors import VidshieldError
from vidshield.models.base import InputSpec, VideoClassifier, normalize_video
from vidshield.text import printable

__all__ = [
    "LAYOUTS",
    "ClassifierError",
    "WrappedClassifier",
    "wrap_classifier",
    "load_classifier",
    "load_input_spec",
    "is_torchscript_archive",
    "resample_video",
    "classifier_hash",
]

#: Input layouts a wrapped module may take.
LAYOUTS = ("NCTHW", "NTCHW")

_SPEC_KEYS = {"layout", "frames", "height", "width", "mean", "std", "class_names", "output", "input_key"}


class ClassifierError(VidshieldError):
    """A classifier that does not fit its declared spec (layout, output shape) or cannot be loaded."""


def _read_logits(out, output) -> torch.Tensor:
    if callable(output):
        return output(out)
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, Mapping) and "logits" in out:
        return out["logits"]
    if hasattr(out, "logits"):
        return out.logits
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        return out[0]
    raise ClassifierError(
        f"cannot find logits in the classifier's output ({type(out).__name__}); pass output=callable(out) -> (N, K)"
    )


class WrappedClassifier(VideoClassifier):
    """A foreign video classifier behind the :class:`VideoClassifier` interface.

    Shape:
        ``forward(video float32 (N, T, 3, H, W) in [0, 1])`` with T, H, W from ``input_spec`` ->
        logits ``float (N, K)``. No per-frame path (``has_frame_logits`` is False): the
        detection network is trained for it with ``vidshield train-detector``.
    """

    def __init__(
        self,
        module: nn.Module,
        *,
        spec: InputSpec,
        layout: str,
        num_classes: int,
        class_names: Sequence[str] | None,
        output: str | Callable = "logits",
        input_key: str | None = None,
        source: str | None = None,
    ):
        super().__init__()
        self.module = module
        self.input_spec = spec
        self.layout = layout
        self.num_classes = int(num_classes)
        self.class_names = list(class_names) if class_names is not None else None
        self.output = output
        self.input_key = input_key
        self.source = source

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        try:
            self.check_input(video, exact_frames=True)
        except ValueError as e:
            raise ClassifierError(str(e)) from e
        x = normalize_video(video, self.input_spec)
        if self.layout == "NCTHW":
            x = x.permute(0, 2, 1, 3, 4)
        out = self.module({self.input_key: x}) if self.input_key is not None else self.module(x)
        logits = _read_logits(out, self.output)
        if not isinstance(logits, torch.Tensor) or tuple(logits.shape) != (video.shape[0], self.num_classes):
            got = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
            raise ClassifierError(
                f"{self.source or type(self.module).__name__} returned logits of shape {got}; "
                f"expected (N, K) = ({video.shape[0]}, {self.num_classes})"
            )
        return logits


def wrap_classifier(
    module: nn.Module,
    *,
    layout: str = "NCTHW",
    frames: int,
    height: int,
    width: int,
    mean: Sequence[float] = (0.0, 0.0, 0.0),
    std: Sequence[float] = (1.0, 1.0, 1.0),
    class_names: Sequence[str] | None = None,
    output: str | Callable = "logits",
    input_key: str | None = None,
    source: str | None = None,
) -> WrappedClassifier:
    """Wrap ``module`` as a :class:`VideoClassifier`, checked on one zero clip.

    Args:
        module: the classifier; put in eval mode. Called as ``module(x)`` (or
            ``module({input_key: x})``) with ``x`` normalised and in ``layout``.
        layout: ``"NCTHW"`` (3D CNNs: C3D, I3D, X3D, R(2+1)D) or ``"NTCHW"`` (Hugging Face video
            transformers, CNN+LSTMs).
        frames, height, width: the clip it takes (T, H, W).
        mean, std: per-channel normalisation of [0, 1] RGB (default: none).
        class_names: the label space; its length must equal the output width K.
        output: ``"logits"`` reads a tensor, ``out["logits"]``, ``out.logits`` or ``out[0]``; or a
            callable ``output(out) -> (N, K)``.
        input_key: call the module with a dict ``{input_key: x}`` instead of ``x``.
        source: a name for messages (a path).

    Returns:
        :class:`WrappedClassifier`, in eval mode, on the module's device.

    Raises:
        ClassifierError: unknown layout, bad spec, the module fails on a clip of the declared
            layout, or its output is not ``(N, K)`` (with K = ``len(class_names)`` when given).
    """
    if layout not in LAYOUTS:
        raise ClassifierError(f"layout must be one of {', '.join(LAYOUTS)}; got {layout!r}")
    if not isinstance(module, nn.Module):
        raise ClassifierError(f"the classifier must be a torch.nn.Module; got {type(module).__name__}")
    if not (output == "logits" or callable(output)):
        raise ClassifierError(f"output must be 'logits' or a callable; got {output!r}")
    try:
        spec = InputSpec(frames=int(frames), height=int(height), width=int(width), mean=tuple(mean), std=tuple(std))
    except (TypeError, ValueError) as e:
        raise ClassifierError(f"invalid input spec: {e}") from e
    if min(spec.frames, spec.height, spec.width) < 1 or len(spec.mean) != 3 or len(spec.std) != 3:
        raise ClassifierError(f"invalid input spec {spec.to_dict()}: frames, height, width >= 1 and 3 means / stds")
    if any(s <= 0 for s in spec.std):
        raise ClassifierError(f"std must be > 0; got {spec.std}")
    name = printable(source or type(module).__name__)
    module.eval()
    param = next(iter(module.parameters()), None)
    device = param.device if param is not None else torch.device("cpu")
    probe = torch.zeros(1, spec.frames, 3, spec.height, spec.width, device=device)
    num_classes = len(class_names) if class_names is not None else None
    wrapped = WrappedClassifier(
        module,
        spec=spec,
        layout=layout,
        num_classes=num_classes or 1,
        class_names=class_names,
        output=output,
        input_key=input_key,
        source=name,
    )
    shape = (1, 3, spec.frames, spec.height, spec.width) if layout == "NCTHW" else tuple(probe.shape)
    try:
        with torch.no_grad():
            x = normalize_video(probe, spec)
            x = x.permute(0, 2, 1, 3, 4) if layout == "NCTHW" else x
            logits = _read_logits(module({input_key: x}) if input_key is not None else module(x), output)
    except ClassifierError:
        raise
    except Exception as e:  # the module's own error on the declared layout: one line, not a traceback
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ClassifierError(f"{name} fails on a {layout} input of shape {shape}: {printable(first)}") from e
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2 or logits.shape[0] != 1:
        got = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ClassifierError(f"{name} returned {got} for one clip; a video classifier returns logits (N, K)")
    k = int(logits.shape[1])
    if num_classes is not None and k != num_classes:
        raise ClassifierError(f"{name} returns {k} logits but {num_classes} class names were given")
    wrapped.num_classes = k
    return wrapped


def is_torchscript_archive(path: str | Path) -> bool:
    """True when ``path`` is a zip archive written by ``torch.jit.save`` (it holds ``code/`` and
    ``constants.pkl``; a ``torch.save`` archive holds pickled objects only)."""
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except (zipfile.BadZipFile, OSError):
        return False
    return any("/code/" in n for n in names) and any(n.endswith("/constants.pkl") for n in names)


def load_input_spec(source: str | Path | Mapping) -> dict:
    """An input spec for :func:`wrap_classifier` from a JSON file, a JSON string or a dict, read
    with :mod:`vidshield.jsonio`'s bounds and checked field by field.

    Keys: ``frames``, ``height``, ``width`` (required, 1 .. 65536); ``layout`` (``NCTHW``),
    ``mean``, ``std`` (3 numbers each), ``class_names`` (strings), ``output`` (``"logits"``),
    ``input_key``.

    Raises:
        ClassifierError: unreadable, not an object, unknown or missing keys, or a value of the
            wrong type or range.
    """
    from vidshield.jsonio import field, parse_json, read_json

    if isinstance(source, Mapping):
        d, where = dict(source), "input spec"
    elif str(source).lstrip().startswith(("{", "[")):  # inline JSON (a file named so: ./NAME)
        where = "--input-spec"
        d = parse_json(str(source), what=where, error=ClassifierError)
    else:
        where = f"input spec {printable(source)}"
        d = read_json(source, what=where, max_bytes=1024 * 1024, error=ClassifierError)
    unknown = sorted(set(d) - _SPEC_KEYS)
    missing = sorted({"frames", "height", "width"} - set(d))
    if unknown or missing:
        raise ClassifierError(
            f"{where}: "
            + "; ".join(
                p for p in (unknown and f"unknown keys {printable(unknown)}", missing and f"missing {missing}") if p
            )
            + f" (keys: {', '.join(sorted(_SPEC_KEYS))})"
        )
    check = dict(what=where, error=ClassifierError)
    for key in ("frames", "height", "width"):
        field(d, key, int, lo=1, hi=65536, **check)
    field(d, "layout", str, default=None, choices=LAYOUTS, **check)
    for key in ("mean", "std"):
        value = field(d, key, list, default=None, items=float, **check)
        if value is not None and len(value) != 3:
            raise ClassifierError(f"{where}: {key!r} must hold 3 numbers (R, G, B), got {len(value)}")
    field(d, "class_names", (list, type(None)), max_len=1_000_000, items=str, **check)
    field(d, "input_key", (str, type(None)), max_len=256, **check)
    field(d, "output", str, default=None, choices=("logits",), **check)
    return d


def load_classifier(
    ref: str | Path,
    *,
    input_spec: str | Path | Mapping | None = None,
    device: str | torch.device = "cpu",
) -> VideoClassifier:
    """A classifier from the command line: a shipped name, a vidshield checkpoint, or a TorchScript file.

    Args:
        ref: ``synthetic-c3d``, ``runs/c3d`` (``.safetensors`` + ``.json``), or ``model.pt`` saved
            with ``torch.jit.save``.
        input_spec: for TorchScript: a JSON file, a JSON string or a dict (see
            :func:`load_input_spec`); default ``model.json`` beside ``model.pt``.
        device: where to put the model.

    Raises:
        ClassifierError: a file that is not TorchScript (pickled modules and state dicts are
            refused), no input spec, or a module that does not fit its spec.
        CheckpointError: a vidshield checkpoint that is missing or corrupt.
    """
    from vidshield.models.checkpoints import load_model

    path = Path(ref)
    if not path.is_file() or path.suffix in (".safetensors", ".json"):
        if input_spec is not None:
            raise ClassifierError(
                f"--input-spec is for TorchScript files; {printable(ref)} is a vidshield checkpoint name"
            )
        model = load_model(ref, device=device)
        model.source = str(ref)
        return model
    if not is_torchscript_archive(path):
        raise ClassifierError(
            f"{printable(path)} is not a TorchScript archive (torch.jit.save); pickled modules and state dicts are refused "
            "(vidshield never unpickles): export with torch.jit.script(model) or torch.jit.trace(model, clip) and torch.jit.save"
        )
    if input_spec is None:
        beside = path.with_suffix(".json")
        if not beside.is_file():
            raise ClassifierError(
                f"{printable(path)}: no input spec; pass --input-spec JSON or put it in {printable(beside)}"
            )
        input_spec = beside
    spec = load_input_spec(input_spec)
    try:
        module = torch.jit.load(str(path), map_location=torch.device(device))
    except (RuntimeError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ClassifierError(f"cannot load TorchScript {printable(path)}: {printable(first)}") from e
    spec.pop("output", None)
    return wrap_classifier(module, source=str(path), **spec)


def resample_video(video: torch.Tensor, spec: InputSpec, *, time: bool = True) -> torch.Tensor:
    """A model's own view of a clip: ``spec.frames`` frames (``time``), ``spec.height x spec.width``.

    Time: frames ``round(linspace(0, T-1, spec.frames))`` (nearest, no blending: frames stay real
    frames); space: bilinear resize with antialiasing (aspect ratio not kept: crop first to keep
    it). Returns the input itself when it already fits; differentiable otherwise.

    Shape:
        ``float (N, T, 3, H, W)`` in [0, 1] -> ``(N, spec.frames or T, 3, spec.height, spec.width)`` in [0, 1].
    """
    if time and video.shape[1] != spec.frames:
        idx = torch.linspace(0, video.shape[1] - 1, spec.frames, device=video.device).round().long()
        video = video.index_select(1, idx)
    n, t, c, h, w = video.shape
    if (h, w) != (spec.height, spec.width):
        frames = F.interpolate(
            video.flatten(0, 1), size=(spec.height, spec.width), mode="bilinear", align_corners=False, antialias=True
        )
        video = frames.clamp(0.0, 1.0).view(n, t, c, spec.height, spec.width)
    return video


def classifier_hash(model: nn.Module) -> str:
    """sha256 (hex) of a classifier's weights and input spec: parameter and buffer names, dtypes,
    shapes and bytes, in ``state_dict`` order. Equal weights give equal hashes on any device."""
    h = hashlib.sha256()
    spec = getattr(model, "input_spec", None)
    if spec is not None:
        h.update(json.dumps(spec.to_dict(), sort_keys=True).encode())
    target = model.module if isinstance(model, WrappedClassifier) else model
    for name, tensor in target.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()

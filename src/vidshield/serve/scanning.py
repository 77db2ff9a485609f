"""The one place where the service runs a scan: the library's pipeline over an uploaded file.

:func:`run_scan` builds the detect -> route -> defend -> classify pipeline with
:func:`vidshield.pipeline.build_pipeline`, as ``vidshield scan`` does (cached per worker process,
so each model is loaded once), runs :func:`vidshield.pipeline.scan_file`, and writes what the page
shows: the report (:func:`vidshield.pipeline.scan_report`, what ``vidshield scan --json`` prints
less the paths of the files that command writes; the video, model and classifier named by the
names the client and the operator gave; the in-domain check and the classifier's label space as
``scan`` reports them), the per-frame label plot, the defended video (model view,
lossless FFV1, as ``scan --defended``) and small PNG thumbnails of the exception frames before
and after defense.

Clients never name a file: models and detector configs are chosen by the names the operator
registered (:class:`ScanSettings`), uploads are stored under server-generated names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from vidshield.errors import VidshieldError
from vidshield.names import DEFAULT_MODEL
from vidshield.pipeline import POLLUTED_RULES

__all__ = ["ScanSettings", "ScanOptions", "ScanOutput", "PipelineCache", "check_settings", "run_scan", "MAX_THUMBNAILS"]

#: Exception frames shown as thumbnails (spread over the video when there are more).
MAX_THUMBNAILS = 8
_THUMB_SIDE = 160


class OptionsError(VidshieldError):
    """A scan option a client sent is not valid (answered with 422)."""


@dataclass(frozen=True)
class ScanSettings:
    """What the operator fixes when starting the service.

    Attributes:
        models: detection network name -> shipped name or checkpoint path (the first is the
            default; by default ``scan``'s, ut-lrcn with its shipped config); clients pick by name.
        configs: detector config name -> ``detector.json`` path (thresholds); clients pick by name.
        classifier: ``(name, reference)`` of the classifier to protect (shipped name, checkpoint
            or TorchScript file), or None: the classifier a distilled detection network serves,
            else the detection network itself (as ``vidshield scan --classifier``).
        input_spec: a TorchScript classifier's input spec (JSON file path or JSON text), as
            ``--input-spec``.
        allow_mismatch: pair a detection network with a classifier it was not trained for.
        comdefend: ComDefend weights (shipped name or path); None: the model's (see
            :func:`~vidshield.pipeline.build_pipeline`).
        device: torch device string for the workers.
    """

    models: dict[str, str] = field(default_factory=lambda: {DEFAULT_MODEL: DEFAULT_MODEL})
    configs: dict[str, str] = field(default_factory=dict)
    classifier: tuple[str, str] | None = None
    input_spec: str | None = None
    allow_mismatch: bool = False
    comdefend: str | None = None
    device: str = "cpu"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ScanSettings:
        d = dict(d)
        if d.get("classifier") is not None:
            d["classifier"] = tuple(d["classifier"])
        return cls(**d)


@dataclass(frozen=True)
class ScanOptions:
    """One job's options, as in ``vidshield scan``: model and config by name, the squeeze check and
    the per-frame vote (None: the detector's default, as ``scan`` without ``--squeeze-check`` /
    ``--vote`` and their ``--no-`` forms), the temporal defense's QP and polluted-frame rule,
    whether to write the defended video, and ``strict`` (refuse a truncated file, as ``--strict``)."""

    model: str
    config: str | None = None
    squeeze_check: bool | None = None
    defend: bool = True
    qp: int = 36
    polluted: str = "exceptions"
    vote: bool | None = None
    strict: bool = False

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def parse(cls, fields: dict[str, str], settings: ScanSettings) -> ScanOptions:
        """Options from form fields (strings); raise :class:`OptionsError` naming the bad one."""
        unknown = sorted(
            set(fields) - {"model", "config", "squeeze_check", "defend", "qp", "polluted", "vote", "strict"}
        )
        if unknown:
            raise OptionsError(f"unknown option(s): {', '.join(unknown)}")
        model = fields.get("model") or next(iter(settings.models))
        if model not in settings.models:
            raise OptionsError(f"model must be one of {', '.join(settings.models)}; got {model!r}")
        config = fields.get("config") or None
        if config is not None and config not in settings.configs:
            known = ", ".join(settings.configs) or "none registered"
            raise OptionsError(f"config must be one of: {known}; got {config!r}")
        try:
            qp = int(fields.get("qp", "36"))
        except ValueError:
            raise OptionsError(f"qp must be an integer in 0..51; got {fields['qp']!r}") from None
        if not 0 <= qp <= 51:
            raise OptionsError(f"qp must be an integer in 0..51; got {qp}")
        polluted = fields.get("polluted") or "exceptions"
        if polluted not in POLLUTED_RULES:
            raise OptionsError(f"polluted must be one of {', '.join(POLLUTED_RULES)}; got {polluted!r}")
        return cls(
            model=model,
            config=config,
            squeeze_check=_flag(fields, "squeeze_check", None),
            defend=_flag(fields, "defend", True),
            qp=qp,
            polluted=polluted,
            vote=_flag(fields, "vote", None),
            strict=_flag(fields, "strict", False),
        )


def _flag(fields: dict[str, str], name: str, default: bool | None) -> bool | None:
    value = fields.get(name)
    if value is None or value == "":
        return default
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise OptionsError(f"{name} must be true or false; got {value!r}")


@dataclass
class ScanOutput:
    """What :func:`run_scan` wrote: the report dict, the label plot, the defended video (or None)
    and the thumbnails ``{frame: {"before": path, "after": path}}``."""

    report: dict
    labels_png: Path | None
    defended: Path | None
    thumbnails: dict[int, dict[str, Path]]


class PipelineCache:
    """The models of each ``(model, config)`` pair, loaded once per worker process by
    :func:`vidshield.pipeline.build_pipeline`; each job gets its own
    :class:`~vidshield.pipeline.DefensePipeline` over them with its temporal defense (QP),
    polluted-frame rule, squeeze check and vote (None: the detector's default, as
    ``build_pipeline(vote=None)``)."""

    def __init__(self, settings: ScanSettings):
        self.settings = settings
        self._pipelines: dict = {}

    def config_name(self, options: ScanOptions) -> str | None:
        """The detector config a job runs with, as its report names it: the name the operator gave
        it, else the file name of the config shipped beside a shipped model (as ``scan``, which
        uses it without --config), else None (the paper's thresholds)."""
        from vidshield.detection.detector import shipped_config

        if options.config is not None:
            return options.config
        shipped = shipped_config(self.settings.models[options.model])
        return None if shipped is None else shipped.name

    def get(self, options: ScanOptions):
        import torch

        from vidshield.defenses import create_defense
        from vidshield.pipeline import DefensePipeline, build_pipeline

        key = (options.model, options.config)
        if key not in self._pipelines:
            s = self.settings
            self._pipelines[key] = build_pipeline(
                model=s.models[options.model],
                classifier=s.classifier[1] if s.classifier else None,
                config=Path(s.configs[options.config]) if options.config else None,
                comdefend=s.comdefend,
                input_spec=s.input_spec,
                allow_mismatch=s.allow_mismatch,
                device=torch.device(s.device),
            )
        base = self._pipelines[key]
        return DefensePipeline(
            base.classifier,
            base.detector,
            temporal=create_defense("temporal", qp=options.qp),
            spatial=base.spatial,
            strategy=base.strategy,
            polluted=options.polluted,
            batch_size=base.batch_size,
            squeeze_check=options.squeeze_check,
            vote=options.vote,
        )


def check_settings(settings: ScanSettings) -> None:
    """Load what the service may use once, so a wrong reference fails at start and not in every
    job: each detection network with the classifier and ComDefend (through
    :func:`~vidshield.pipeline.build_pipeline`: pairing and input spec checked), and each detector
    config (:meth:`~vidshield.detection.DetectorConfig.load`).

    Raises:
        VidshieldError: with the first problem found.
    """
    from vidshield.detection import DetectorConfig

    cache = PipelineCache(settings)
    for name in settings.models:
        cache.get(ScanOptions(model=name))
    for path in settings.configs.values():
        DetectorConfig.load(path)


class _Progress:
    """The ``add_task`` / ``advance`` interface :func:`scan_file` reports to, forwarded as
    ``callback(frames done, total frames)``."""

    def __init__(self, total: int, callback: Callable[[int, int], None] | None):
        self.total, self.done, self.callback = total, 0, callback

    def add_task(self, description, total=None):
        return 0

    def advance(self, task, n):
        self.done = min(self.total, self.done + int(n))
        if self.callback is not None:
            self.callback(self.done, self.total)


def run_scan(
    path: str | Path,
    options: ScanOptions,
    out_dir: str | Path,
    *,
    pipelines: PipelineCache,
    name: str,
    total_frames: int,
    progress: Callable[[int, int], None] | None = None,
) -> ScanOutput:
    """Scan one video file and write the page's files into ``out_dir``.

    Args:
        path: the uploaded video (already checked to decode).
        options: the job's options.
        out_dir: the job's folder: ``labels.png``, ``defended.mkv``, ``thumbs/`` are written there,
            each atomically.
        pipelines: this worker's pipeline cache.
        name: the upload's display name (used as text only).
        total_frames: the frame count from the upload check (for progress).
        progress: called with ``(frames done, total frames)`` after each window.

    Returns:
        A :class:`ScanOutput`.

    Raises:
        VidshieldError: the file does not decode, or the models do not fit together.
    """
    from vidshield.detection.plots import plot_label_strips
    from vidshield.io import VideoWriter, probe
    from vidshield.pipeline import scan_file, scan_report

    out_dir = Path(out_dir)
    pipe = pipelines.get(options)  # this job's own pipeline over the cached models
    writer = VideoWriter(out_dir / "defended.mkv", fps=probe(path).fps or 25.0) if options.defend else None
    try:  # the defended video is written window by window; as `scan`, out of domain nothing is defended
        result = scan_file(
            pipe,
            path,
            progress=_Progress(total_frames, progress),
            on_defended=writer.write if writer else None,
            check_domain=True,
            strict=options.strict,
        )
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    defended = writer.close() if writer is not None else None
    report = scan_report(
        pipe,
        result,
        video=name,
        model=options.model,
        classifier=_classifier_name(pipelines),
        config=pipelines.config_name(options),
        domain=result.domain,
    )
    labels = result.frame_labels()
    labels_png = None
    if len(labels) >= 3:
        labels_png = plot_label_strips(
            [(f"{name}: {result.verdict}", labels)], out_dir / "labels.png", class_names=pipe.classifier.class_names
        )
    thumbnails = _thumbnails(pipe, path, result, out_dir / "thumbs")
    return ScanOutput(report=report, labels_png=labels_png, defended=defended, thumbnails=thumbnails)


def _classifier_name(pipelines: PipelineCache) -> str | None:
    c = pipelines.settings.classifier
    return c[0] if c else None


def thumbnail_frames(exceptions: list[int]) -> list[int]:
    """At most :data:`MAX_THUMBNAILS` exception frames, spread over the list."""
    if len(exceptions) <= MAX_THUMBNAILS:
        return list(exceptions)
    return [exceptions[i * len(exceptions) // MAX_THUMBNAILS] for i in range(MAX_THUMBNAILS)]


def _thumbnails(pipe, path, result, folder: Path) -> dict[int, dict[str, Path]]:
    """PNG thumbnails of some exception frames, as decoded and as defended, at the view the scan
    decoded (:func:`vidshield.pipeline.defended_frames_at`)."""
    from vidshield.pipeline import defended_frames_at

    frames = defended_frames_at(pipe, path, result, thumbnail_frames(result.exception_frames()))
    return {
        t: {
            "before": _write_png(before, folder / f"{t}-before.png"),
            "after": _write_png(after, folder / f"{t}-after.png"),
        }
        for t, (before, after) in sorted(frames.items())
    }


def _write_png(frame, path: Path) -> Path:
    """float ``(3, H, W)`` in [0, 1] -> a PNG at most 160 px per side."""
    import io

    from PIL import Image

    from vidshield.utils import atomic_write_bytes

    rgb = frame.mul(255).round().clamp(0, 255).byte().permute(1, 2, 0).numpy()
    img = Image.fromarray(rgb)
    img.thumbnail((_THUMB_SIDE, _THUMB_SIDE))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return atomic_write_bytes(path, buf.getvalue())

"""Corpus scans: which videos, their content hash, the settings hash, one row per video, and a
resumable result store.

One row per video (:data:`COLUMNS`): ``path`` (absolute; :func:`row_text`), ``size`` (bytes), ``content_hash``
(SHA-256 of the file), ``settings_hash`` (models' weights, thresholds, defense options, version:
:func:`settings_hash`), ``verdict`` (the most severe window verdict, or ``out_of_domain``:
:func:`vidshield.pipeline.reported_verdict`), ``detector_verdict`` (what the detector alone said), ``alpha`` (the largest
window exception index), ``exception_frames`` (global frame indices), ``defense`` (the strongest
defense any window got), ``label_before`` / ``label_after`` and their class names,
``num_frames`` (frames decoded and scanned), ``frames_declared`` (what the container declares;
None when it does not say), ``truncated`` (the file's data ends early: its decodable frames were scanned), ``warnings`` (damage found while decoding: frames skipped, a file
that looks truncated; :attr:`vidshield.pipeline.ScanResult.warnings`), ``in_domain`` (the
detector config's in-domain check, :func:`vidshield.pipeline.domain_check`: None without a
profile; a video out of domain is scanned with nothing defended, as ``scan`` does), ``windows``, ``seconds``
(wall time of this video's work: the only timing column) and ``error`` (``None``, or
``"ExceptionType: message"``, in which case the scan fields are ``None``). A video that cannot be
scanned (corrupt, too short, missing) gets a row with its error.

The per-video work is :func:`scan_one` (hash, then :func:`vidshield.pipeline.scan_file`). The
Ray engine splits it in two, :func:`decode_video` (hash + decode, a CPU task) and
:func:`scan_decoded` (the pipeline, an actor), over the same code, so both give the same row.

Resuming: a rerun skips a video whose row exists for the same path, content hash and settings
hash (the file is re-read to hash it, not decoded); ``retry_errors`` rescans rows with an error.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from vidshield import __version__
from vidshield.detection.detector import DEFAULT_MODEL
from vidshield.errors import InputFormatError, OutputError, VidshieldError
from vidshield.text import printable

__all__ = [
    "COLUMNS",
    "TIMING_COLUMNS",
    "ScanSettings",
    "Task",
    "list_videos",
    "content_hash",
    "settings_hash",
    "row_text",
    "pipeline_for",
    "warm_up",
    "scan_one",
    "decode_video",
    "scan_decoded",
    "ResultStore",
    "read_rows",
    "scan_corpus",
]

COLUMNS = (
    "path",
    "size",
    "content_hash",
    "settings_hash",
    "verdict",
    "detector_verdict",
    "alpha",
    "exception_frames",
    "defense",
    "label_before",
    "label_after",
    "class_before",
    "class_after",
    "num_frames",
    "frames_declared",
    "truncated",
    "warnings",
    "in_domain",
    "windows",
    "seconds",
    "error",
)
#: Columns that differ between runs of the same scan (everything else is a function of the
#: file's content and the settings).
TIMING_COLUMNS = ("seconds",)
_DEFENSE_ORDER = ("none", "temporal", "spatial")


# --------------------------------------------------------------------------------------------
# Sources and hashes
# --------------------------------------------------------------------------------------------


def list_videos(source: str | os.PathLike) -> list[Path]:
    """The videos of a corpus, as absolute paths.

    ``source`` is a folder (searched recursively for :func:`vidshield.io.is_video_file` files, sorted),
    a text file with one path per line (relative paths are relative to the list's folder; blank
    lines and ``#`` comments skipped; duplicates dropped; missing files kept, they become error
    rows), or a single video file.

    Raises:
        VidshieldError: no such folder or file, or no video in it.
    """
    from vidshield.io import VIDEO_EXTENSIONS, is_video_file

    src = Path(source)
    if src.is_dir():
        videos = sorted(p.resolve() for p in src.rglob("*") if is_video_file(p))
    elif is_video_file(src):
        videos = [src.resolve()]
    elif src.is_file():
        try:
            lines = src.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as e:
            raise VidshieldError(f"cannot read the list of videos {printable(src)}: {printable(e)}") from e
        entries = [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
        videos = list(dict.fromkeys((src.parent / entry).resolve() for entry in entries))
    else:
        raise VidshieldError(f"{printable(src)}: no such folder, video or list of video paths")
    if not videos:
        raise VidshieldError(f"no videos in {printable(src)} (looked for {', '.join(VIDEO_EXTENSIONS)})")
    return videos


def content_hash(path: str | os.PathLike, *, chunk: int = 1 << 20) -> tuple[int, str]:
    """``(size in bytes, SHA-256 hex digest)`` of a file, read in ``chunk``-byte pieces."""
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
            size += len(block)
    return size, digest.hexdigest()


@dataclass(frozen=True)
class ScanSettings:
    """What a corpus scan runs: the options of ``vidshield scan`` (see ``vidshield scan --help``).

    ``device`` is where the models run and ``allow_mismatch`` only lets a pairing run that would
    otherwise be refused; neither is part of :func:`settings_hash` (results are meant not to
    depend on them). ``max_frames`` caps the frames scanned per video (None: all).
    """

    model: str = DEFAULT_MODEL
    classifier: str | None = None
    input_spec: str | None = None
    allow_mismatch: bool = False
    config: str | None = None
    comdefend: str | None = None
    qp: int = 36
    polluted: str = "exceptions"
    squeeze_check: bool | None = None
    vote: bool | None = None
    max_frames: int | None = None
    device: str = "cpu"


def _file_digest(path: Path) -> str:
    return content_hash(path)[1]


def _artifact_files(ref: str, kind: str) -> list[Path]:
    """The files behind a model reference, found as the loaders find them: a TorchScript file and
    the input spec beside it (:func:`~vidshield.models.adapter.load_classifier`'s rule), else a
    checkpoint's weights and JSON (:func:`~vidshield.models.resolve_artifact`)."""
    from vidshield.checkpoint import checkpoint_paths
    from vidshield.models import resolve_artifact

    path = Path(ref)
    if path.is_file() and path.suffix not in (".safetensors", ".json"):
        return [path, path.with_suffix(".json")]
    return list(checkpoint_paths(resolve_artifact(ref, kind=kind)))


def _artifact_digest(ref: str, kind: str) -> str:
    return "+".join(_file_digest(p) if p.is_file() else "-" for p in _artifact_files(ref, kind))


def _named_comdefend(classifier: str, model: str) -> str:
    """The ComDefend weights :func:`~vidshield.pipeline.build_pipeline` picks when none are given:
    the classifier's JSON's ``comdefend``, else the detection network's, else the default (a
    TorchScript classifier has no JSON)."""
    from vidshield.defenses.spatial.comdefend import DEFAULT_WEIGHTS
    from vidshield.errors import CheckpointError
    from vidshield.jsonio import read_json

    for ref in (classifier, model):
        meta_path = _artifact_files(ref, "model")[1]
        if meta_path.is_file():
            name = read_json(meta_path, error=CheckpointError).get("comdefend")
            if isinstance(name, str) and name:
                return name
    return DEFAULT_WEIGHTS


def _served_ref(model: str) -> str | None:
    """The classifier a distilled detection network serves (its JSON's ``serves.ref``), which
    :func:`~vidshield.pipeline.build_pipeline` protects when no classifier is given."""
    from vidshield.errors import CheckpointError
    from vidshield.jsonio import field, read_json

    meta_path = _artifact_files(model, "model")[1]
    what = dict(what=f"checkpoint metadata {printable(meta_path)}", error=CheckpointError)
    serves = field(read_json(meta_path, error=CheckpointError), "serves", (dict, type(None)), **what)
    return None if serves is None else field(serves, "ref", (str, type(None)), max_len=4096, **what)


def _default_network(model: str) -> str | None:
    """The detection network a model's JSON names (``detector.network``), which
    :func:`~vidshield.pipeline.build_pipeline` uses when the model stands alone."""
    from vidshield.errors import CheckpointError
    from vidshield.jsonio import field, read_json

    meta_path = _artifact_files(model, "model")[1]
    what = dict(what=f"checkpoint metadata {printable(meta_path)}", error=CheckpointError)
    section = field(read_json(meta_path, error=CheckpointError), "detector", (dict, type(None)), **what) or {}
    return field(section, "network", (str, type(None)), max_len=4096, **what)


@functools.lru_cache(maxsize=8)
def settings_hash(settings: ScanSettings) -> str:
    """16 hex digits identifying what determines a row: the vidshield version, the hashes of the
    files of the detector, the classifier (given, or served by a distilled detector), the
    detection network a model standing alone names (its JSON's ``detector.network``), its input
    spec, the detector config (given, or shipped beside a shipped model) and ComDefend, and the
    defense options. Raises the loaders' errors for a missing model."""
    from vidshield.detection.detector import shipped_config

    classifier = settings.classifier or _served_ref(settings.model)
    network = _default_network(settings.model) if classifier is None else None
    spec = settings.input_spec
    config = settings.config or shipped_config(settings.model)
    fingerprint = {
        **({"network": _artifact_digest(network, "model")} if network else {}),
        "vidshield": __version__,
        "model": _artifact_digest(settings.model, "model"),
        "classifier": _artifact_digest(classifier, "model") if classifier else None,
        "input_spec": _file_digest(Path(spec)) if spec and Path(spec).is_file() else spec,
        "config": _file_digest(Path(config)) if config else None,
        "comdefend": _artifact_digest(
            settings.comdefend or _named_comdefend(classifier or settings.model, settings.model), "ComDefend weights"
        ),
        "qp": settings.qp,
        "polluted": settings.polluted,
        "squeeze_check": settings.squeeze_check,
        "vote": settings.vote,
        "max_frames": settings.max_frames,
    }
    return hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()[:16]


@functools.lru_cache(maxsize=2)
def pipeline_for(settings: ScanSettings):
    """The :class:`~vidshield.pipeline.DefensePipeline` of ``settings``, built once per process."""
    import torch

    from vidshield.pipeline import build_pipeline

    return build_pipeline(
        model=settings.model,
        classifier=settings.classifier,
        input_spec=settings.input_spec,
        allow_mismatch=settings.allow_mismatch,
        config=Path(settings.config) if settings.config else None,
        comdefend=settings.comdefend,
        temporal={"qp": settings.qp},
        polluted=settings.polluted,
        squeeze_check=settings.squeeze_check,
        vote=settings.vote,
        device=torch.device(settings.device),
    )


def warm_up(settings: ScanSettings) -> None:
    """Build the pipeline and run each stage once on a tiny input (first-call costs: kernels,
    numba's cache, the decoder library), so a worker's first video is as fast as the others."""
    import torch

    import vidshield.io  # noqa: F401 (PyAV, loaded on the first decode otherwise)
    from vidshield.pipeline import working_spec

    pipeline = pipeline_for(settings)
    spec = working_spec(pipeline)
    window = torch.rand(spec.frames, 3, spec.height, spec.width, generator=torch.Generator().manual_seed(0))
    pipeline.run(window)
    mask = torch.zeros(1, spec.frames, dtype=torch.bool)
    mask[0, 1] = True
    pipeline.temporal(window.unsqueeze(0), polluted=mask)
    with torch.no_grad():
        pipeline.spatial(window[:1].unsqueeze(0))


# --------------------------------------------------------------------------------------------
# One video -> one row
# --------------------------------------------------------------------------------------------


@dataclass
class Task:
    """One video to scan. ``known_hash``: the content hash of its existing row (skip when the
    file still has it); ``attempts``: times a worker was lost while holding it."""

    index: int
    path: str
    known_hash: str | None = None
    attempts: int = 0


def row_text(text) -> str:
    """``str(text)`` as valid UTF-8, what a row stores (Parquet strings must be UTF-8): a file
    name's undecodable bytes (and any other lone surrogate) become ``\\udcXX`` escapes; other
    text is unchanged. The ``path`` column is the video's path through this function."""
    return str(text).encode("utf-8", "backslashreplace").decode("utf-8")


def _row(path, size, digest, settings: ScanSettings, seconds: float, **fields) -> dict:
    row = dict.fromkeys(COLUMNS)
    row.update(path=row_text(path), size=size, content_hash=digest, settings_hash=settings_hash(settings))
    row.update(fields, seconds=seconds)
    return row


def _error_row(path, size, digest, settings, error: BaseException, started: float) -> dict:
    message = row_text(f"{type(error).__name__}: {error}".splitlines()[0])
    return _row(
        path, size, digest, settings, time.perf_counter() - started, exception_frames=[], warnings=[], error=message
    )


def _domain_pipeline(settings: ScanSettings, path):
    """``(pipeline, in_domain)``: the settings' pipeline, or a copy that defends nothing for a
    video out of the detector config's domain (:func:`vidshield.pipeline.domain_check`)."""
    from vidshield.pipeline import domain_check

    pipeline = pipeline_for(settings)
    domain = domain_check(pipeline, path)
    if domain is None or domain["in_domain"]:
        return pipeline, None if domain is None else True
    pipeline = copy.copy(pipeline)
    pipeline.strategy = "none"  # a verdict outside the calibrated domain is not acted on
    return pipeline, False


def _result_row(path, size, digest, settings, result, started: float, in_domain: bool | None) -> dict:
    from vidshield.pipeline import reported_verdict

    names = getattr(pipeline_for(settings).classifier, "class_names", None)
    return _row(
        path,
        size,
        digest,
        settings,
        time.perf_counter() - started,
        verdict=reported_verdict(result.verdict, in_domain),
        detector_verdict=result.verdict,
        alpha=max(r.alpha for _, r in result.windows),
        exception_frames=result.exception_frames(),
        defense=max((r.defense for _, r in result.windows), key=_DEFENSE_ORDER.index),
        label_before=result.label_before,
        label_after=result.label,
        class_before=row_text(names[result.label_before]) if names else None,
        class_after=row_text(names[result.label]) if names else None,
        num_frames=result.num_frames,
        frames_declared=result.frames_declared,
        truncated=result.truncated,
        warnings=[row_text(w) for w in result.warnings],
        in_domain=in_domain,
        windows=len(result.windows),
    )


def scan_one(path: str | os.PathLike, settings: ScanSettings, *, known_hash: str | None = None) -> dict | None:
    """Scan one video file and return its row (see the module doc), or None when its content
    hash equals ``known_hash`` (already scanned). Never raises for a bad video: the error goes
    into the row. The pipeline is built once per process (:func:`pipeline_for`)."""
    from vidshield.pipeline import scan_file

    started = time.perf_counter()
    try:
        size, digest = content_hash(path)
    except OSError as e:
        return _error_row(path, None, None, settings, e, started)
    if digest == known_hash:
        return None
    try:
        pipeline, in_domain = _domain_pipeline(settings, path)
        result = scan_file(pipeline, path, max_frames=settings.max_frames)
    except Exception as e:
        return _error_row(path, size, digest, settings, e, started)
    return _result_row(path, size, digest, settings, result, started, in_domain)


@dataclass
class Decoded:
    """A video hashed and decoded at the model's view (:func:`decode_video`), or why not.

    ``row``: the finished error row when hashing or decoding failed; ``skipped``: the content
    hash equals the known one; else ``starts`` are the window starts of the uint8 windows array
    ``(W, t, 3, H, W)`` that travels separately, ``frames_declared`` and ``damage`` what
    :func:`~vidshield.pipeline.scan_file` reports of the decode.
    """

    path: str
    size: int | None = None
    content_hash: str | None = None
    starts: list[int] = field(default_factory=list)
    frames_declared: int | None = None
    damage: list[str] = field(default_factory=list)
    seconds: float = 0.0
    skipped: bool = False
    row: dict | None = None


def decode_video(path: str, settings: ScanSettings, spec, *, known_hash: str | None = None):
    """First half of :func:`scan_one`: hash, then decode every model-view window.

    Args:
        spec: the scan's view (:func:`vidshield.pipeline.working_spec`: window length and size).

    Returns:
        ``(Decoded, windows uint8 numpy (W, t, 3, H, W) or None)``. Decoded frames are multiples
        of 1/255, so uint8 carries them exactly.
    """
    import torch

    from vidshield.io._source import VideoSource
    from vidshield.pipeline import decode_damage, model_view_windows
    from vidshield.video import to_uint8

    started = time.perf_counter()
    head = Decoded(path=str(path))
    try:
        head.size, head.content_hash = content_hash(path)
    except OSError as e:
        head.row = _error_row(path, None, None, settings, e, started)
        return head, None
    if head.content_hash == known_hash:
        head.skipped = True
        return head, None
    try:
        starts, clips = [], []
        with decode_damage() as damage:
            for start, clip in model_view_windows(path, spec, max_frames=settings.max_frames):
                starts.append(start)
                clips.append(to_uint8(clip))
        windows = torch.stack(clips).numpy() if clips else None
        with VideoSource(path) as src:
            head.frames_declared = src.declared_frames()
    except Exception as e:
        head.row = _error_row(path, head.size, head.content_hash, settings, e, started)
        return head, None
    head.starts, head.damage, head.seconds = starts, damage, time.perf_counter() - started
    return head, windows


def scan_decoded(head: Decoded, windows: np.ndarray | None, settings: ScanSettings) -> dict | None:
    """Second half of :func:`scan_one`: the pipeline over decoded windows -> the row (None when
    skipped). ``head.seconds`` (the decode time) is added to the row's ``seconds``."""
    import torch

    from vidshield.pipeline import scan_windows
    from vidshield.video import to_float

    if head.skipped:
        return None
    if head.row is not None:
        return head.row
    started = time.perf_counter() - head.seconds

    def clips():  # (torch.tensor copies: Ray's arrays are read-only)
        return ((s, to_float(torch.tensor(w))) for s, w in zip(head.starts, windows if windows is not None else []))

    try:
        pipeline, in_domain = _domain_pipeline(settings, head.path)  # reads the file (the embeddings)
        result = scan_windows(pipeline, clips, name=head.path, frames_declared=head.frames_declared, damage=head.damage)
    except Exception as e:
        return _error_row(head.path, head.size, head.content_hash, settings, e, started)
    return _result_row(head.path, head.size, head.content_hash, settings, result, started, in_domain)


def lost_row(task: Task, settings: ScanSettings) -> dict:
    """The row of a video whose workers kept dying (``attempts`` times): a crash or out of memory."""
    started = time.perf_counter()
    try:
        size, digest = content_hash(task.path)
    except OSError:
        size, digest = None, None
    error = RuntimeError(f"the worker scanning it was lost {task.attempts} times (crashed, killed or out of memory)")
    return _error_row(task.path, size, digest, settings, error, started)


# --------------------------------------------------------------------------------------------
# The result store
# --------------------------------------------------------------------------------------------


def _parquet():
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as e:
        raise VidshieldError(
            "writing .parquet needs pyarrow: pip install 'vidshield[distributed]' (or write .jsonl)"
        ) from e
    return pa, pq


def _schema(pa):
    string, integer = pa.string(), pa.int64()
    types = {
        "size": integer,
        "alpha": pa.float64(),
        "exception_frames": pa.list_(integer),
        "label_before": integer,
        "label_after": integer,
        "num_frames": integer,
        "frames_declared": integer,
        "truncated": pa.bool_(),
        "warnings": pa.list_(string),
        "in_domain": pa.bool_(),
        "windows": integer,
        "seconds": pa.float64(),
    }
    return pa.schema([(name, types.get(name, string)) for name in COLUMNS])


def _journal_rows(path: Path) -> list[dict]:
    """Rows of a JSON-lines file (each line read with :func:`vidshield.jsonio.parse_json` and its
    key fields checked); a last line cut short by a crash is ignored.

    Raises:
        InputFormatError: a line that is not a row (other than the last, unterminated one).
    """
    from vidshield.jsonio import field, parse_json

    if not path.is_file():
        return []
    rows = []
    try:
        lines = path.read_bytes().split(b"\n")
    except OSError as e:
        raise InputFormatError(f"cannot read {printable(path)}: {printable(e.strerror or e)}") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        what = f"{printable(path)}, line {number}"
        try:
            row = parse_json(line, what=what, expect=dict)
        except InputFormatError:
            if number == len(lines):  # the unterminated last line of an interrupted run
                break
            raise
        for key in ("path", "settings_hash"):
            field(row, key, str, what=what)
        for key in ("content_hash", "error"):
            field(row, key, (str, type(None)), what=what, default=None)
        rows.append(row)
    return rows


def _latest(rows) -> list[dict]:
    """One row per (path, settings hash), the last one written; sorted."""
    latest = {(r["path"], r["settings_hash"]): r for r in rows}
    return [latest[k] for k in sorted(latest)]


def read_rows(out: str | os.PathLike) -> list[dict]:
    """The rows of a corpus scan's output (``.parquet`` or ``.jsonl``, with the journal of an
    interrupted Parquet run), one per (path, settings hash), sorted by path."""
    out = Path(out)
    rows: list[dict] = []
    if out.suffix == ".parquet":
        if out.is_file():
            _, pq = _parquet()
            rows = pq.read_table(out).to_pylist()
        rows += _journal_rows(ResultStore.journal_path(out))
    else:
        rows = _journal_rows(out)
    return _latest(rows)


@contextlib.contextmanager
def _writing(path: Path):
    """File-system errors while writing ``path`` -> :class:`~vidshield.errors.OutputError`."""
    try:
        yield
    except OutputError:
        raise
    except OSError as e:
        raise OutputError(f"cannot write {printable(path)}: {printable(e.strerror or e)}") from None


class ResultStore:
    """The rows of a corpus scan, written as they come, resumable.

    ``OUT.jsonl``: rows are appended to OUT itself. ``OUT.parquet``: rows are appended to a
    journal ``OUT.journal.jsonl`` and :meth:`close` rewrites OUT (atomically) with the old and
    new rows, one per (path, settings hash), sorted, then deletes the journal. Either way a row
    is on disk (flushed) as soon as it is appended, so a crash loses only the videos in flight.
    Memory: an index of the rows (a Parquet close reads them all).
    """

    SYNC_EVERY = 32

    def __init__(self, out: str | os.PathLike):
        self.out = self.check(out)
        self.journal = self.journal_path(self.out)
        self._index = {(r["path"], r["settings_hash"]): r for r in read_rows(self.out)}
        self._file = None
        self._unsynced = 0
        self.appended = 0

    @classmethod
    def check(cls, out: str | os.PathLike) -> Path:
        """Check, before any work, that ``out`` can be a result store: its suffix, pyarrow for
        Parquet, and that it and its journal can be written (nothing is created).

        Raises:
            VidshieldError: which check failed.
        """
        from vidshield.utils import check_writable

        out = Path(out)
        if out.suffix not in (".jsonl", ".parquet"):
            raise VidshieldError(f"--out must end in .parquet or .jsonl, got {printable(out.name)}")
        if out.suffix == ".parquet":
            _parquet()
        check_writable(out)
        check_writable(cls.journal_path(out))
        return out

    @staticmethod
    def journal_path(out: Path) -> Path:
        out = Path(out)
        return out if out.suffix == ".jsonl" else out.with_name(out.name + ".journal.jsonl")

    def previous(self, path: str, settings_digest: str) -> dict | None:
        """The stored row of ``path`` (as :func:`row_text` writes it) under these settings, or None."""
        return self._index.get((path, settings_digest))

    def append(self, row: dict) -> None:
        with _writing(self.journal):
            self._append(row)

    def _append(self, row: dict) -> None:
        if self._file is None:
            self.journal.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.journal, "ab+")  # noqa: SIM115 (kept open across appends; closed in close())
            self._file.seek(0, os.SEEK_END)
            if self._file.tell() > 0:  # drop an unterminated last line left by a crash
                self._file.seek(-1, os.SEEK_END)
                if self._file.read(1) != b"\n":
                    self._file.seek(0)
                    data = self._file.read()
                    self._file.truncate(data.rfind(b"\n") + 1)
                    self._file.seek(0, os.SEEK_END)
        self._file.write(json.dumps(row, sort_keys=True).encode() + b"\n")
        self._file.flush()
        self._index[(row["path"], row["settings_hash"])] = row
        self.appended += 1
        self._unsynced += 1
        if self._unsynced >= self.SYNC_EVERY:
            os.fsync(self._file.fileno())
            self._unsynced = 0

    def close(self) -> None:
        with _writing(self.out):
            self._close()

    def _close(self) -> None:
        if self._file is not None:
            os.fsync(self._file.fileno())
            self._file.close()
            self._file = None
        if self.out.suffix == ".parquet" and (self.journal.is_file() or not self.out.is_file()):
            pa, pq = _parquet()
            table = pa.Table.from_pylist(read_rows(self.out), schema=_schema(pa))
            tmp = self.out.with_name(f".{self.out.name}.tmp")
            self.out.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(table, tmp)
            os.replace(tmp, self.out)
            self.journal.unlink(missing_ok=True)

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# --------------------------------------------------------------------------------------------
# A corpus scan
# --------------------------------------------------------------------------------------------

ENGINES = ("local", "ray")


def scan_corpus(
    source: str | os.PathLike,
    out: str | os.PathLike,
    settings: ScanSettings,
    *,
    engine: str = "local",
    workers: int = 1,
    retry_errors: bool = False,
    max_attempts: int = 3,
    on_event: Callable[[str, dict], None] | None = None,
    **engine_options,
) -> dict:
    """Scan every video of ``source`` (see :func:`list_videos`) into ``out`` (``.parquet`` or
    ``.jsonl``), skipping the videos already there (same path, content hash and settings).

    Args:
        engine: ``local`` (:func:`vidshield.distributed.local.run_local`) or ``ray``
            (:func:`vidshield.distributed.ray_engine.run_ray`; ``engine_options`` go there).
        workers: worker processes (local) or pipeline actors (Ray), each loading the models once.
        retry_errors: rescan videos whose stored row has an error.
        max_attempts: a video whose worker is lost this many times gets an error row.
        on_event: called as ``on_event(kind, info)``: ``start`` (``videos``, ``to_scan``),
            ``dispatch`` (``path``, ``pid`` of the worker or actor it goes to), ``decode`` (Ray:
            ``path``, ``in_flight`` videos now), ``row`` (``row``), ``skip`` (``path``), ``lost``
            (``path``, ``pid`` or None: a worker died holding it; it is retried).

    Returns:
        ``videos``, ``scanned`` (rows written), ``skipped``, ``errors`` (rows with an error),
        ``retried`` (videos retried after a lost worker), ``workers_lost``, ``frames`` (frames
        scanned), ``seconds`` (wall), ``engine``, ``workers``.
    """
    if engine not in ENGINES:
        raise VidshieldError(f"engine must be one of {ENGINES}, got {engine!r}")
    if workers < 1 or max_attempts < 1:
        raise VidshieldError("workers and max_attempts must be >= 1")
    emit = on_event or (lambda kind, info: None)
    started = time.perf_counter()
    ResultStore.check(out)
    videos = list_videos(source)
    settings_hash.cache_clear()  # models may have changed on disk since an earlier scan in this process
    pipeline_for.cache_clear()
    pipeline_for(settings)  # fails here, with a clear error, on bad settings before any worker starts
    digest = settings_hash(settings)
    counts = {"scanned": 0, "skipped": 0, "errors": 0, "frames": 0}
    with ResultStore(out) as store:
        tasks = []
        for i, path in enumerate(videos):
            prev = store.previous(row_text(path), digest)
            known = None if prev is None or (retry_errors and prev["error"]) else prev["content_hash"]
            tasks.append(Task(i, str(path), known))
        emit("start", {"videos": len(videos), "to_scan": sum(t.known_hash is None for t in tasks)})

        def on_result(task: Task, row: dict | None) -> None:
            if row is None:
                counts["skipped"] += 1
                emit("skip", {"path": task.path})
                return
            store.append(row)
            counts["scanned"] += 1
            counts["errors"] += row["error"] is not None
            counts["frames"] += row["num_frames"] or 0
            emit("row", {"row": row})

        if engine == "local":
            from vidshield.distributed.local import run_local

            stats = run_local(
                tasks, settings, workers=workers, on_result=on_result, emit=emit, max_attempts=max_attempts
            )
        else:
            try:
                from vidshield.distributed.ray_engine import run_ray
            except ImportError as e:
                raise VidshieldError(f"--engine ray needs Ray: pip install 'vidshield[distributed]' ({e})") from e
            stats = run_ray(
                tasks,
                settings,
                workers=workers,
                on_result=on_result,
                emit=emit,
                max_attempts=max_attempts,
                **engine_options,
            )
    return {
        "videos": len(videos),
        **counts,
        **stats,
        "seconds": time.perf_counter() - started,
        "engine": engine,
        "workers": workers,
        "settings": {**asdict(settings), "settings_hash": digest},
        "out": str(out),
    }

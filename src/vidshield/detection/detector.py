"""The temporal-consistency detector: per-frame labels -> alpha -> clean / sparse / dense.

The detection network is the classifier's per-frame path (the paper's CNN+LSTM with the links
between LSTM steps removed): ``model.frame_logits(video) -> (N, T, K)``. With a model that
offers ``forward_with_frames`` (the LRCN), :meth:`TemporalConsistencyDetector.detect_with_logits`
classifies and detects from one CNN pass.

Long videos: :meth:`TemporalConsistencyDetector.detect_stream` takes the frames in chunks,
computes each frame's logits once (the per-frame path treats frames independently), and
reports one :class:`~vidshield.detection.exception.Detection` per sliding window of
``window`` frames (default: the model's ``input_spec.frames``) every ``stride`` frames
(default ``window // 2``); a last window is aligned to the end of the video so every frame is
covered. Memory holds one chunk and the logits of at most ``window`` frames.
:meth:`TemporalConsistencyDetector.summarize` turns the windows into one verdict per video: the
most severe window decides (its score, hence alpha, is the maximum over windows).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from vidshield.detection.calibration import video_flagged
from vidshield.detection.exception import Detection, check_thresholds, exception_index, route
from vidshield.detection.scores import CONSISTENCY_SCORES, FEATURE_SCORES, compute_scores, known_score
from vidshield.errors import InputFormatError, VidshieldError
from vidshield.jsonio import field as json_field
from vidshield.jsonio import read_json
from vidshield.names import DEFAULT_MODEL
from vidshield.text import printable
from vidshield.utils import atomic_write_json, eval_mode, module_device
from vidshield.video import check_video

__all__ = [
    "DEFAULT_MODEL",
    "DetectorConfig",
    "TemporalConsistencyDetector",
    "load_detector",
    "shipped_config",
    "model_vote_default",
    "model_squeeze_default",
    "model_default_network",
    "collect_videos",
    "detect_file",
]

_CONFIG_FORMAT = "vidshield-detector"
_CONFIG_MAX_BYTES = 1 << 20


@dataclass(frozen=True)
class DetectorConfig:
    """Thresholds and score of a detector, saved as JSON (``detector.json``).

    Attributes:
        gamma1: clean/sparse threshold on ``score`` (paper: 0.175 on alpha).
        gamma2: sparse/dense threshold (paper: 0.3 on alpha). ``0 <= gamma1 <= gamma2``.
        score: name in :data:`~vidshield.detection.scores.CONSISTENCY_SCORES` to route on.
        model: name or path of the model the thresholds were calibrated for (informative).
        calibration: how the thresholds were chosen (data, F1, AUC ...), free-form JSON.
        vote: the pipeline's per-frame majority vote (beyond the paper, see
            :class:`~vidshield.pipeline.DefensePipeline`): True / False, or None to use the detection
            network's own default (:func:`model_vote_default`: its checkpoint's ``detector.vote``).
        target_fpr: the per-window false-alarm rate gamma1 was calibrated for
            (``calibrate --target-fpr``), or None. When set, a video of several windows is
            flagged only when more windows fire than the budget allows over its length
            (:func:`~vidshield.detection.calibration.windows_allowed`).
        domain: the calibration footage's profile for the in-domain check
            (:class:`~vidshield.detection.domain.DomainProfile` as a dict), or None.
    """

    gamma1: float = 0.175
    gamma2: float = 0.3
    score: str = "alpha"
    model: str | None = None
    calibration: Mapping[str, Any] = field(default_factory=dict)
    vote: bool | None = None
    target_fpr: float | None = None
    domain: Mapping[str, Any] | None = None

    def __post_init__(self):
        check_thresholds(self.gamma1, self.gamma2)
        if self.target_fpr is not None and not (
            isinstance(self.target_fpr, (int, float))
            and not isinstance(self.target_fpr, bool)
            and 0 < self.target_fpr < 1
        ):
            raise ValueError(f"target_fpr must be None or a number in (0, 1); got {self.target_fpr!r}")
        if not known_score(self.score):
            known = sorted([*CONSISTENCY_SCORES, *FEATURE_SCORES])
            raise ValueError(f"unknown consistency score {self.score!r}; known: {known}")
        object.__setattr__(self, "gamma1", float(self.gamma1))
        object.__setattr__(self, "gamma2", float(self.gamma2))
        object.__setattr__(self, "calibration", dict(self.calibration))
        if self.vote is not None and not isinstance(self.vote, bool):
            raise ValueError(f"vote must be true, false or null, got {self.vote!r}")
        if self.domain is not None:
            self.domain_profile()  # validates

    def domain_profile(self):
        """The :class:`~vidshield.detection.domain.DomainProfile`, or None without one."""
        from vidshield.detection.domain import DomainProfile

        if self.domain is None:
            return None
        try:
            return DomainProfile.from_dict(self.domain)
        except (KeyError, TypeError) as e:
            raise ValueError(f"domain profile is malformed: {e!r}") from e

    def to_dict(self) -> dict:
        return {
            "format": _CONFIG_FORMAT,
            "version": 1,
            "gamma1": self.gamma1,
            "gamma2": self.gamma2,
            "score": self.score,
            "model": self.model,
            "calibration": dict(self.calibration),
            "vote": self.vote,
            "target_fpr": self.target_fpr,
            **({"domain": dict(self.domain)} if self.domain is not None else {}),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DetectorConfig:
        if d.get("format", _CONFIG_FORMAT) != _CONFIG_FORMAT:
            raise ValueError(f"not a detector config (format {d.get('format')!r})")
        return cls(
            gamma1=d.get("gamma1", 0.175),
            gamma2=d.get("gamma2", 0.3),
            score=d.get("score", "alpha"),
            model=d.get("model"),
            calibration=d.get("calibration") or {},
            vote=d.get("vote"),
            target_fpr=d.get("target_fpr"),
            domain=d.get("domain"),
        )

    def save(self, path: str | Path) -> Path:
        """Write the config as JSON, atomically. Returns the path."""
        return atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> DetectorConfig:
        """Read a config written by :meth:`save` (or by ``vidshield calibrate``).

        Raises:
            VidshieldError: missing file, invalid JSON or invalid values.
        """
        what = f"detector config {printable(path)}"
        d = read_json(path, what=what, max_bytes=_CONFIG_MAX_BYTES)
        check = dict(what=what, error=InputFormatError)
        for key in ("gamma1", "gamma2"):
            json_field(d, key, float, default=None, lo=0.0, **check)  # finite: checked by from_dict
        json_field(d, "score", str, default=None, max_len=64, **check)
        json_field(d, "model", (str, type(None)), max_len=4096, **check)
        json_field(d, "calibration", dict, default=None, **check)
        json_field(d, "format", str, default=None, max_len=64, **check)
        json_field(d, "vote", (bool, type(None)), **check)
        json_field(d, "target_fpr", (float, type(None)), lo=0.0, hi=1.0, **check)
        json_field(d, "domain", (dict, type(None)), **check)
        try:
            return cls.from_dict(d)
        except (ValueError, TypeError) as e:
            raise InputFormatError(f"{what} is invalid: {printable(e)}") from e


def model_vote_default(model: torch.nn.Module) -> bool:
    """Whether the pipeline votes by default on this detection network: its checkpoint's
    ``"detector": {"vote": ...}`` (checked by :func:`~vidshield.models.load_model`), else False.

    The shipped ``synthetic-lrcn`` says true and ``ut-lrcn`` false: on the synthetic set the vote
    turns the adaptive sparse attack's 0 % robust accuracy into 100 % at no clean cost, while on
    UT-Interaction the weak per-frame network costs clean accuracy (48.3 % -> 38.3 %); see
    ``results/security.md``.
    """
    section = (getattr(model, "metadata", None) or {}).get("detector") or {}
    return section.get("vote") is True


def model_squeeze_default(model: torch.nn.Module) -> bool:
    """Whether the pipeline runs the squeeze check by default on this detection network: its
    checkpoint's ``"detector": {"squeeze_check": ...}`` (checked by
    :func:`~vidshield.models.load_model`), else False (the paper).

    No shipped network says true: on top of ``synthetic-lrcn-robust``'s vote the check kept 66.7 %
    of 12 synthetic clips against 20-step PGD through ComDefend on every frame at 8/255 but 50.0 %
    against 50 steps (the vote alone: 41.7 %), for one ComDefend pass per clip (20x the time), and
    it costs clean accuracy on UT-Interaction (``results/security.md``).
    """
    section = (getattr(model, "metadata", None) or {}).get("detector") or {}
    return section.get("squeeze_check") is True


def model_default_network(model: torch.nn.Module) -> str | None:
    """The detection network a model's checkpoint names for the pipeline built on it alone
    (``"detector": {"network": NAME}``, a shipped name or checkpoint path, checked by
    :func:`~vidshield.models.load_model`), else None; see
    :func:`~vidshield.pipeline.build_pipeline`.

    The shipped ``synthetic-lrcn`` names ``synthetic-lrcn-robust``, its adversarially trained
    per-frame network (``vidshield train-detector --adversarial-eps``), whose vote resists an
    attacker who changes every frame (``results/security.md``).
    """
    section = (getattr(model, "metadata", None) or {}).get("detector") or {}
    return section.get("network")


@contextlib.contextmanager
def _inference(model: torch.nn.Module):
    """Eval mode and no grad; the modes are restored afterwards."""
    with eval_mode(model), torch.no_grad():
        yield


class TemporalConsistencyDetector:
    """Detects adversarial videos from the temporal consistency of per-frame labels.

    Args:
        model: a :class:`~vidshield.models.base.VideoClassifier` with a per-frame path
            (``has_frame_logits`` true and ``frame_logits(video) -> (N, T, K)``), e.g. the LRCN.
        gamma1: ``score < gamma1`` -> clean (paper: 0.175).
        gamma2: ``gamma1 <= score < gamma2`` -> sparse, ``>= gamma2`` -> dense (paper: 0.3).
        score: the consistency score to route on (default the paper's ``"alpha"``).
        vote: the pipeline's per-frame vote (see :attr:`vote`); None: the model's default.
        batch_size: videos per forward pass.

    Example:
        >>> det = TemporalConsistencyDetector(create_model("test-lrcn", num_classes=3))
        >>> det.detect(video)[0].verdict
        'clean'
    """

    def __init__(
        self,
        model: torch.nn.Module,
        *,
        gamma1: float = 0.175,
        gamma2: float = 0.3,
        score: str = "alpha",
        vote: bool | None = None,
        batch_size: int = 8,
    ):
        if not getattr(model, "has_frame_logits", False) or not hasattr(model, "frame_logits"):
            raise ValueError(
                f"the detector needs a model with a per-frame path (has_frame_logits), e.g. lrcn; "
                f"{type(model).__name__} has none"
            )
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        if score in FEATURE_SCORES and not hasattr(model, "frame_outputs"):
            raise ValueError(
                f"score {score!r} reads per-frame features; {type(model).__name__} gives none (frame_outputs), "
                f"e.g. the lrcn does"
            )
        self.model = model
        self.batch_size = batch_size
        self._num_classes = 0  # set by _stream_logits: where the logits end in its rows
        self.config = DetectorConfig(
            gamma1=gamma1, gamma2=gamma2, score=score, model=getattr(model, "arch_name", None), vote=vote
        )

    @classmethod
    def from_config(
        cls, config: DetectorConfig | str | Path, model: torch.nn.Module, *, batch_size: int = 8
    ) -> TemporalConsistencyDetector:
        """Build a detector from a :class:`DetectorConfig` or the path of its JSON file."""
        if not isinstance(config, DetectorConfig):
            config = DetectorConfig.load(config)
        det = cls(model, gamma1=config.gamma1, gamma2=config.gamma2, score=config.score, batch_size=batch_size)
        det.config = config
        return det

    @property
    def gamma1(self) -> float:
        return self.config.gamma1

    @property
    def gamma2(self) -> float:
        return self.config.gamma2

    @property
    def score(self) -> str:
        return self.config.score

    @property
    def vote(self) -> bool:
        """Whether a :class:`~vidshield.pipeline.DefensePipeline` built on this detector votes by
        default: the config's ``vote``, or when that is None the model's
        (:func:`model_vote_default`)."""
        return self.config.vote if self.config.vote is not None else model_vote_default(self.model)

    @property
    def squeeze_check(self) -> bool:
        """Whether a :class:`~vidshield.pipeline.DefensePipeline` built on this detector runs the
        squeeze check by default: the detection network's (:func:`model_squeeze_default`)."""
        return model_squeeze_default(self.model)

    # -- per-frame logits ------------------------------------------------------------------

    def _forward(self, x: torch.Tensor, with_video_logits: bool):
        """``(video_logits or None, frame_logits (n, t, K), frame_features (n, t, D) or None)`` of
        a batch on the model's device; features when the model gives them (``frame_outputs``: the
        LRCN, one CNN pass for all three)."""
        if hasattr(self.model, "frame_outputs"):
            return self.model.frame_outputs(x, with_video_logits=with_video_logits)
        if with_video_logits and hasattr(self.model, "forward_with_frames"):
            return (*self.model.forward_with_frames(x), None)
        return (self.model(x) if with_video_logits else None), self.model.frame_logits(x), None

    def _run(
        self, video: torch.Tensor, *, with_video_logits: bool, observe=None
    ) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor | None]:
        batch = check_video(video)
        if batch.dim() == 4:
            batch = batch.unsqueeze(0)
        if batch.shape[1] < 3:
            raise ValueError(f"detection needs clips of at least 3 frames; got T = {batch.shape[1]}")
        if observe is not None and not hasattr(self.model, "frame_outputs"):
            raise ValueError(f"observe needs the CNN features; {type(self.model).__name__} gives none (frame_outputs)")
        device = module_device(self.model)
        video_parts, frame_parts, feature_parts = [], [], []
        with _inference(self.model):
            for i in range(0, batch.shape[0], self.batch_size):
                x = batch[i : i + self.batch_size].to(device)
                v, f, feats = self._forward(x, with_video_logits)
                if f.dim() != 3 or tuple(f.shape[:2]) != tuple(x.shape[:2]):
                    raise ValueError(
                        f"{type(self.model).__name__}.frame_logits must return (N, T, K) = "
                        f"({x.shape[0]}, {x.shape[1]}, K); got {tuple(f.shape)}"
                    )
                frame_parts.append(f.float().cpu())
                if feats is not None:
                    feature_parts.append(feats.float().cpu())
                if observe is not None:
                    observe(frame_parts[-1], feature_parts[-1])
                if v is not None:
                    video_parts.append(v.float().cpu())
        video_logits = torch.cat(video_parts) if video_parts else None
        features = torch.cat(feature_parts) if feature_parts else None
        return video_logits, torch.cat(frame_parts), features

    def frame_logits(self, video: torch.Tensor) -> torch.Tensor:
        """Per-frame logits of the detection network.

        Shape:
            ``(N, T, 3, H, W)`` or ``(T, 3, H, W)`` float in [0, 1] -> ``float32 (N, T, K)`` on CPU.
        """
        return self._run(video, with_video_logits=False)[1]

    # -- detection -------------------------------------------------------------------------

    def detections_from_logits(
        self, frame_logits: torch.Tensor, *, start: int = 0, frame_features: torch.Tensor | None = None
    ) -> list[Detection]:
        """Detections from per-frame logits ``(N, T, K)`` (T >= 3), one per video, and the feature
        scores from ``frame_features`` ``(N, T, D)`` when given; ``start`` is recorded in each
        :class:`Detection` (the first frame's index in the source video)."""
        scores = compute_scores(frame_logits, frame_features=frame_features)
        if self.score not in scores:  # a feature score without features: say so
            scores |= compute_scores(frame_logits, [self.score], frame_features=frame_features)
        labels = frame_logits.argmax(dim=-1)
        alpha, mask = exception_index(labels)
        out = []
        for i in range(labels.shape[0]):
            value = float(scores[self.score][i])
            out.append(
                Detection(
                    alpha=float(alpha[i]),
                    verdict=route(value, self.gamma1, self.gamma2),
                    frame_labels=labels[i].tolist(),
                    exception_frames=mask[i].nonzero().flatten().tolist(),
                    start=start,
                    score_name=self.score,
                    score=value,
                    scores={k: float(v[i]) for k, v in scores.items()},
                )
            )
        return out

    def detect(self, video: torch.Tensor, *, observe=None) -> list[Detection]:
        """Detect on a clip ``(T, 3, H, W)`` or a batch ``(N, T, 3, H, W)``, float in [0, 1],
        T >= 3. Returns one :class:`Detection` per video.

        ``observe``: called with the per-frame logits ``float32 (n, T, K)`` and the CNN features
        ``float32 (n, T, F)`` of each forward pass (CPU; the model needs ``frame_outputs``, e.g.
        the LRCN): the in-domain check of ``scan`` rides on the detector's own pass."""
        _, frame_logits, features = self._run(video, with_video_logits=False, observe=observe)
        return self.detections_from_logits(frame_logits, frame_features=features)

    def detect_with_logits(self, video: torch.Tensor, *, observe=None) -> tuple[list[Detection], torch.Tensor]:
        """Detect and classify at once: ``(detections, video_logits float32 (N, K) on CPU)``.

        With ``model.forward_with_frames`` (the LRCN) the CNN runs once for both; otherwise the
        model runs twice (``forward`` and ``frame_logits``). ``observe``: as :meth:`detect`.
        """
        video_logits, frame_logits, features = self._run(video, with_video_logits=True, observe=observe)
        return self.detections_from_logits(frame_logits, frame_features=features), video_logits

    def detect_stream(
        self, chunks: Iterable[tuple[int, torch.Tensor]], *, window: int | None = None, stride: int | None = None
    ) -> list[Detection]:
        """Sliding-window detection over a long video given as chunks.

        Args:
            chunks: ``(start, frames)`` pairs in order, ``frames`` float ``(t, 3, H, W)`` in
                [0, 1] starting at frame ``start`` (as ``vidshield.io.iter_chunks`` yields them;
                overlapping chunks are fine, gaps are an error).
            window: frames per window, >= 3 (default ``model.input_spec.frames``).
            stride: frames between window starts, 1 .. window (default ``window // 2``). With
                ``stride <= window - 2`` every frame but the video's first and last is interior
                to some window, so the union of the windows' exception frames equals the
                exceptions of the whole label sequence.

        Returns:
            one :class:`Detection` per window, ``start`` = its first frame; windows start at
            0, stride, 2*stride ... and a last one ends at the last frame. A video shorter than
            ``window`` gives a single window over all its frames (at least 3).
        """
        window, stride = self._window_args(window, stride)
        out: list[Detection] = []
        pending = None  # logits (t, K) of frames pending_start .. next_frame-1
        pending_start = next_frame = next_window = 0
        for start, frames in chunks:
            start = int(start)
            check_video(frames, name="chunk")
            if frames.dim() != 4:
                raise ValueError(f"chunk frames must be (t, 3, H, W); got shape {tuple(frames.shape)}")
            if start > next_frame:
                raise ValueError(
                    f"chunks leave a gap: expected a chunk starting at or before frame {next_frame}, got {start}"
                )
            frames = frames[next_frame - start :]
            if frames.shape[0] == 0:
                continue
            outputs = self._stream_logits(frames)  # logits (t, K), then features (t, D) if the model has them
            pending = outputs if pending is None else torch.cat([pending, outputs])
            next_frame += frames.shape[0]
            while next_window + window <= next_frame:
                w = pending[next_window - pending_start : next_window - pending_start + window]
                out.append(self._window_detection(w, next_window))
                next_window += stride
            keep_from = max(pending_start, min(next_window, next_frame - window))
            pending = pending[keep_from - pending_start :]
            pending_start = keep_from
        total = next_frame
        if total < 3:
            raise ValueError(f"detection needs at least 3 frames; the stream had {total}")
        last_end = out[-1].start + window if out else 0
        if last_end < total:
            first = max(0, total - window)
            w = pending[first - pending_start :]
            out.append(self._window_detection(w, first))
        return out

    def _window_detection(self, outputs: torch.Tensor, start: int) -> Detection:
        """The detection of one window from :meth:`_stream_logits`'s rows ``(t, K [+ D])``."""
        k = self._num_classes
        features = outputs[None, :, k:] if outputs.shape[1] > k else None
        return self.detections_from_logits(outputs[None, :, :k], start=start, frame_features=features)[0]

    def _window_args(self, window: int | None, stride: int | None) -> tuple[int, int]:
        if window is None:
            spec = getattr(self.model, "input_spec", None)
            if spec is None:
                raise ValueError("window is required: the model has no input_spec")
            window = int(spec.frames)
        if not isinstance(window, int) or window < 3:
            raise ValueError(f"window must be an int >= 3 frames, got {window!r}")
        stride = max(1, window // 2) if stride is None else stride
        if not isinstance(stride, int) or not 1 <= stride <= window:
            raise ValueError(f"stride must be an int in 1 .. window ({window}), got {stride!r}")
        return window, stride

    def _stream_logits(self, frames: torch.Tensor) -> torch.Tensor:
        """Per-frame logits ``(t, K)`` of frames ``(t, 3, H, W)``, followed along the last axis by
        the frame features ``(t, D)`` when the model gives them, in pieces of at most
        ``batch_size * 16`` frames (the per-frame path treats every frame on its own)."""
        device = module_device(self.model)
        step = self.batch_size * 16
        parts = []
        with _inference(self.model):
            for i in range(0, frames.shape[0], step):
                x = frames[i : i + step].unsqueeze(0).to(device)
                _, logits, features = self._forward(x, False)
                self._num_classes = logits.shape[-1]
                rows = logits if features is None else torch.cat([logits, features.to(logits.dtype)], dim=-1)
                parts.append(rows[0].float().cpu())
        return torch.cat(parts)

    def video_flagged(self, windows: list[Detection]) -> bool:
        """Whether a video with these windows is attacked: any window fires (no budget), or, with
        ``config.target_fpr``, more windows fire than :func:`windows_allowed` allows."""
        fired = sum(w.verdict != "clean" for w in windows)
        if self.config.target_fpr is None:
            return fired > 0
        return video_flagged(fired, len(windows), self.config.target_fpr)

    def summarize(self, windows: list[Detection]) -> Detection:
        """One detection for a whole video from its windows: the most severe window decides.

        ``score`` and ``alpha`` are the maxima over windows (each score maximised on its own),
        ``verdict`` routes the maximum score, ``frame_labels`` covers the whole video and
        ``exception_frames`` are the union of the windows' exception frames, as indices in the
        video. With a false-alarm budget (``config.target_fpr``) the verdict is ``clean`` unless
        :meth:`video_flagged`.
        """
        if not windows:
            raise ValueError("summarize needs at least one window")
        total = max(w.start + w.num_frames for w in windows)
        labels = [-1] * total
        exceptions: set[int] = set()
        for w in windows:
            labels[w.start : w.start + w.num_frames] = w.frame_labels
            exceptions.update(w.start + e for e in w.exception_frames)
        if -1 in labels:
            raise ValueError("the windows do not cover the video")
        score = max(w.score for w in windows)
        names = set.intersection(*(set(w.scores) for w in windows))
        return Detection(
            alpha=max(w.alpha for w in windows),
            verdict=route(score, self.gamma1, self.gamma2) if self.video_flagged(windows) else "clean",
            frame_labels=labels,
            exception_frames=sorted(exceptions),
            start=0,
            score_name=self.score,
            score=score,
            scores={n: max(w.scores[n] for w in windows) for n in sorted(names)},
        )


def detect_file(
    detector: TemporalConsistencyDetector,
    path: str | Path,
    *,
    window: int | None = None,
    stride: int | None = None,
    chunk_frames: int = 64,
) -> tuple[Detection, list[Detection]]:
    """Detect on a whole video file, streamed in chunks at the model's view.

    Every frame of the file is decoded (no temporal sampling: neighbouring frames must stay
    neighbours), brought to the model's view as ``scan`` does
    (:func:`vidshield.data.transforms.model_view_chunks`: short side scaled, centre crop of the
    model's ``input_spec`` height x width), and cut into windows of
    ``window`` frames (default ``input_spec.frames``); a clip of exactly ``window`` frames (what
    the attacks write) is one window. Returns ``(summary, windows)`` with ``summary`` from
    :meth:`TemporalConsistencyDetector.summarize`.

    Raises:
        VidshieldError: the file cannot be read, or has fewer than 3 frames.
    """
    from vidshield.data.transforms import model_view_chunks
    from vidshield.io import iter_chunks

    spec = getattr(detector.model, "input_spec", None)
    if spec is not None:
        chunks: Iterator = model_view_chunks(path, spec, chunk_frames=chunk_frames)
    else:
        chunks = iter_chunks(path, chunk_frames=chunk_frames)
    try:
        windows = detector.detect_stream(chunks, window=window, stride=stride)
    except ValueError as e:
        if "at least 3 frames" in str(e):
            raise VidshieldError(f"{path}: {e}") from e
        raise
    return detector.summarize(windows), windows


def load_detector(
    model: str | Path | None = None,
    config: DetectorConfig | str | Path | None = None,
    *,
    gamma1: float | None = None,
    gamma2: float | None = None,
    score: str | None = None,
    vote: bool | None = None,
    device: str | torch.device = "cpu",
    batch_size: int = 8,
) -> TemporalConsistencyDetector:
    """A detector from a model reference (shipped name or checkpoint; default: the config's) and
    an optional config (``detector.json`` from ``vidshield calibrate``), thresholds, score and
    vote overriding the config's when given. A vote left None by both follows the model's
    checkpoint (:func:`model_vote_default`). Without a config, a shipped model's shipped config
    (:func:`shipped_config`, e.g. ``zoo/ut-lrcn.detector.json``) is used, else the paper's
    thresholds. Without either, the model is :data:`DEFAULT_MODEL`.

    Raises:
        VidshieldError: no model named, or a model without a per-frame path (not a CNN+LSTM).
    """
    from vidshield.models import load_model

    if model is None and config is None:
        model = DEFAULT_MODEL
    if config is None:
        config = shipped_config(model)
    if config is None:
        cfg = DetectorConfig()
    else:
        cfg = config if isinstance(config, DetectorConfig) else DetectorConfig.load(config)
    model_ref = model or cfg.model
    if model_ref is None:
        raise VidshieldError("--model is required (the detector config names no model)")
    net = load_model(model_ref, device=device)
    if not getattr(net, "has_frame_logits", False):
        raise VidshieldError(
            f"{model_ref} ({getattr(net, 'arch_name', type(net).__name__)}) has no per-frame path; "
            "the detector needs a model with a per-frame path, e.g. lrcn"
        )
    cfg = DetectorConfig(
        gamma1=cfg.gamma1 if gamma1 is None else gamma1,
        gamma2=cfg.gamma2 if gamma2 is None else gamma2,
        score=cfg.score if score is None else score,
        model=str(model_ref),
        calibration=cfg.calibration,
        vote=cfg.vote if vote is None else vote,
        target_fpr=cfg.target_fpr,
        domain=cfg.domain,
    )
    return TemporalConsistencyDetector.from_config(cfg, net, batch_size=batch_size)


def shipped_config(model: str | Path | None) -> Path | None:
    """The detector config shipped beside a shipped model (``zoo/NAME.detector.json``) when
    ``model`` is the bare name of one and no file of that name exists here (an existing path
    wins, as for the weights); else None."""
    from vidshield.checkpoint import checkpoint_paths
    from vidshield.models.checkpoints import zoo_dir

    if model is None or len(Path(model).parts) != 1 or Path(model).is_absolute():
        return None
    weights, meta = checkpoint_paths(model)
    if weights.is_file() or meta.is_file():
        return None
    path = zoo_dir() / f"{model}.detector.json"
    return path if path.is_file() else None


def collect_videos(path: str | Path, *, successful_only: bool = True) -> list[tuple[Path, dict]]:
    """The videos to detect on: a file, or a folder.

    A folder with a ``manifest.json`` (an adversarial set written by the attacks, or any manifest
    :func:`vidshield.data.read_manifest` reads) lists its clips: each entry has ``"file"``
    (relative to the folder, inside it) and may have ``"success"``. With
    ``successful_only`` the clips whose attack failed (``"success": false``) are left out, as in
    the paper's evaluation sets. A folder without a manifest gives every video file in it
    (:func:`vidshield.io.is_video_file`: not hidden, one of :data:`vidshield.io.VIDEO_EXTENSIONS`),
    sorted by name, not recursively.

    Returns:
        ``(path, entry)`` pairs; ``entry`` is the manifest entry (``{}`` without manifest).

    Raises:
        VidshieldError: the path does not exist, the manifest is invalid, or no video is found.
    """
    from vidshield.data.manifest import MANIFEST_NAME, read_manifest
    from vidshield.io import VIDEO_EXTENSIONS, is_video_file

    path = Path(path)
    if path.is_file():
        return [(path, {})]
    if not path.is_dir():
        raise VidshieldError(f"no such video file or folder: {path}")
    if (path / MANIFEST_NAME).is_file():
        clips = read_manifest(path)["clips"]
        out = [(path / c["file"], c) for c in clips if not (successful_only and c.get("success") is False)]
        missing = [str(p) for p, _ in out if not p.is_file()]
        if missing:
            raise VidshieldError(f"{path / MANIFEST_NAME} lists {len(missing)} missing file(s), e.g. {missing[0]}")
    else:
        out = [(p, {}) for p in sorted(path.iterdir()) if is_video_file(p)]
    if not out:
        raise VidshieldError(f"no videos found in {path} (looked for {', '.join(VIDEO_EXTENSIONS)} or a manifest.json)")
    return out

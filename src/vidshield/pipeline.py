"""The paper's framework (its Figure 1): detect -> route -> defend -> classify, on clips
(:class:`DefensePipeline`) and on whole files (:func:`scan_file`, :func:`defend_frames_full_resolution`).

The routing itself (verdict -> defense, the squeeze check, which frames the temporal defense
rebuilds) lives in :mod:`vidshield.routing`; the fixed strategies of Table 4 (no defense, spatial
only, temporal only) run through the same code, so the comparison is like for like.
"""

from __future__ import annotations

import contextlib
import copy
import time
import warnings
from dataclasses import dataclass, field, replace

import torch

from vidshield.detection import TemporalConsistencyDetector
from vidshield.detection.vote import frame_vote
from vidshield.models.adapter import resample_video
from vidshield.models.base import InputSpec
from vidshield.routing import POLLUTED_RULES, STRATEGIES, polluted_frames, route_defense
from vidshield.schema import SCAN_REPORT_VERSION
from vidshield.text import printable
from vidshield.utils import eval_mode, module_device
from vidshield.video import check_video

__all__ = ["STRATEGIES", "POLLUTED_RULES", "PipelineResult", "DefensePipeline", "polluted_frames"]


@dataclass
class PipelineResult:
    """What the pipeline did with one video.

    Attributes:
        verdict: the detector's verdict (``clean`` / ``sparse`` / ``dense``).
        alpha: exception index of the input.
        frame_labels: per-frame labels of the detection network on the input.
        exception_frames: exception frames of the input.
        defense: the defense applied: ``none``, ``temporal`` or ``spatial``.
        rebuilt_frames: frames the temporal defense rebuilt (empty otherwise).
        label: final predicted class index; ``probs``: final class probabilities (K,).
        label_before, probs_before: the classifier's label and probabilities on the undefended input.
        defended: the defended video ``float32 (T, 3, H, W)`` in [0, 1] (the input when no
            defense ran), on CPU; None in :class:`ScanResult` windows (:func:`scan_file` streams
            the defended frames instead of keeping them).
        squeezed: routed clean but caught by the squeeze check (so spatially defended).
        vote_flag: with ``vote``: the classifier's label of the input differs from the majority of
            its per-frame labels (reported as a detection; the answer is the vote either way).
        seconds: wall-clock seconds per stage (``detect``, ``defend``, ``classify``), this
            video's share of its batch.
        score: the value of the detector's routing score (``alpha`` unless the config routes on
            another score), compared with gamma1 / gamma2.
    """

    verdict: str
    alpha: float
    frame_labels: list[int]
    exception_frames: list[int]
    defense: str
    rebuilt_frames: list[int]
    label: int
    probs: list[float]
    label_before: int
    probs_before: list[float]
    defended: torch.Tensor | None = field(repr=False)
    squeezed: bool = False
    seconds: dict[str, float] = field(default_factory=dict)
    vote_flag: bool = False
    score: float | None = None

    def to_dict(self, class_names: list[str] | None = None) -> dict:
        """JSON-ready summary (without the video tensor)."""
        d = {
            "verdict": self.verdict,
            "alpha": self.alpha,
            "score": self.alpha if self.score is None else self.score,
            "exception_frames": self.exception_frames,
            "frame_labels": self.frame_labels,
            "defense": self.defense,
            "squeezed": self.squeezed,
            "vote_flag": self.vote_flag,
            "rebuilt_frames": self.rebuilt_frames,
            "label_before": self.label_before,
            "label": self.label,
            "probs": self.probs,
            "seconds": self.seconds,
        }
        if class_names:
            d["class_before"] = class_names[self.label_before]
            d["class"] = class_names[self.label]
        return d


class DefensePipeline:
    """Detect -> route -> defend -> classify.

    Each model gets its own view of the input (:func:`~vidshield.models.adapter.resample_video`):
    the detector the input's frames at its frame size, the classifier its clip length and frame
    size; the defenses work on the input as given.

    Args:
        classifier: the video classifier whose decision is protected (``forward(video) -> (N, K)``).
            When it is the detector's model (the CNN+LSTM), a clean video costs one pass.
        detector: a :class:`TemporalConsistencyDetector` (its thresholds route).
        temporal: the temporal defense (a :class:`~vidshield.defenses.Defense`), called
            ``temporal(video, polluted=mask)`` on the videos routed to it.
        spatial: the spatial defense, called ``spatial(video)`` (every frame).
        strategy: ``routed`` (the paper), ``none``, ``spatial`` or ``temporal`` (Table 4's
            fixed strategies); see :func:`vidshield.routing.route_defense`.
        polluted: which frames the temporal defense rebuilds, one of
            :data:`~vidshield.routing.POLLUTED_RULES`: ``exceptions`` (the paper), ``minority``
            or ``exceptions+ends`` (see :mod:`vidshield.routing`).
        batch_size: videos per forward pass.
        squeeze_check: beyond the paper: a video the detector calls clean is also purified by the
            spatial defense; if that changes its label, it is treated as densely attacked (a
            feature-squeezing check, Xu et al. 2018). Costs a spatial pass on clean videos. A
            universal dense perturbation flips every frame alike, so alpha misses it; this does not.
            None (default): the detection network's default
            (:func:`~vidshield.detection.detector.model_squeeze_default`; off for every shipped
            network).
        vote: beyond the paper (issue 13): the answer is the majority of the detection network's
            per-frame labels of the defended video (:func:`~vidshield.detection.vote.frame_vote`,
            ties broken by the classifier) instead of the classifier's label, and the squeeze check
            compares votes. ``k`` attacked frames move at most ``k`` votes. ``label`` is the vote,
            ``probs`` stay the classifier's. None (default): the detector decides
            (``detector.vote``: its config's ``vote``, else the detection network's checkpoint,
            :func:`~vidshield.detection.detector.model_vote_default`). The vote needs the detection
            network and the classifier to have as many classes: asked for (here or by the config)
            it raises otherwise; the model's default is then off. The shipped
            ``synthetic-lrcn`` votes (adaptive sparse attack: robust accuracy 0 % -> 100 %, no
            clean cost; :func:`build_pipeline` has its adversarially trained
            ``synthetic-lrcn-robust`` vote, dense attack 8.3 % -> 41.7 %), ``ut-lrcn`` does not
            (its weak per-frame network costs clean accuracy, 48.3 % -> 38.3 %); figures in
            ``results/security.md``.

    Example:
        >>> pipe = DefensePipeline(lrcn, TemporalConsistencyDetector(lrcn), temporal=TemporalDefense(),
        ...                        spatial=SpatialDefense())
        >>> [r.verdict for r in pipe.run(videos)]
    """

    def __init__(
        self,
        classifier,
        detector: TemporalConsistencyDetector,
        *,
        temporal,
        spatial,
        strategy: str = "routed",
        polluted: str = "exceptions",
        batch_size: int = 8,
        squeeze_check: bool | None = None,
        vote: bool | None = None,
    ):
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
        if polluted not in POLLUTED_RULES:
            raise ValueError(f"polluted must be one of {POLLUTED_RULES}, got {polluted!r}")
        self.classifier = classifier
        self.detector = detector
        self.temporal = temporal
        self.spatial = spatial
        self.strategy = strategy
        self.polluted = polluted
        self.batch_size = batch_size
        self.squeeze_check = bool(squeeze_check) if squeeze_check is not None else detector.squeeze_check
        k_detector, k_classifier = (
            getattr(detector.model, "num_classes", None),
            getattr(classifier, "num_classes", None),
        )
        same_space = k_detector is None or k_classifier is None or k_detector == k_classifier
        asked = vote if vote is not None else detector.config.vote  # None: the model's default
        if asked and not same_space:
            raise ValueError(
                f"the vote needs the detection network's per-frame labels in the classifier's label space; "
                f"they have {k_detector} and {k_classifier} classes"
            )
        self.vote = bool(asked) if asked is not None else detector.vote and same_space

    @torch.no_grad()
    def _classify(self, video: torch.Tensor) -> torch.Tensor:
        spec = getattr(self.classifier, "input_spec", None)
        with eval_mode(self.classifier):
            x = video.to(module_device(self.classifier))
            return self.classifier(x if spec is None else resample_video(x, spec)).float().cpu()

    def _answer(self, video: torch.Tensor, logits: torch.Tensor, frame_labels=None) -> torch.Tensor:
        """The pipeline's label ``int64 (n,)`` for videos with classifier ``logits (n, K)``: their
        argmax, or with ``vote`` the per-frame majority (``frame_labels (n, T)`` or computed)."""
        if not self.vote:
            return logits.argmax(-1)
        if frame_labels is None:  # at the detector's view, as detect() sees the input
            view = resample_video(video, self.detector.model.input_spec, time=False)
            frame_labels = self.detector.frame_logits(view).argmax(-1)
        return frame_vote(torch.as_tensor(frame_labels), logits.shape[-1], logits.softmax(-1))

    @torch.no_grad()
    def run(self, video: torch.Tensor, *, observe=None) -> list[PipelineResult]:
        """Run on ``(N, T, 3, H, W)`` or ``(T, 3, H, W)`` float in [0, 1]; one result per video.
        ``observe``: passed to the detector (:meth:`TemporalConsistencyDetector.detect`), which
        calls it with the per-frame logits and CNN features of the input's first detection pass."""
        check_video(video)
        batch = video.unsqueeze(0) if video.dim() == 4 else video
        results: list[PipelineResult] = []
        for i in range(0, batch.shape[0], self.batch_size):
            results.extend(self._run_batch(batch[i : i + self.batch_size], observe))
        return results

    def _run_batch(self, batch: torch.Tensor, observe=None) -> list[PipelineResult]:
        n = batch.shape[0]
        same_model = self.classifier is self.detector.model
        t0 = time.perf_counter()
        if same_model:
            detections, logits_before = self.detector.detect_with_logits(batch, observe=observe)
        else:  # the detector's own view: its frame size, the same frames
            view = resample_video(batch, self.detector.model.input_spec, time=False)
            detections = self.detector.detect(view, observe=observe)
        t_detect = time.perf_counter() - t0
        t0 = time.perf_counter()
        if not same_model:
            logits_before = self._classify(batch)
        t_classify_before = time.perf_counter() - t0

        defenses = [route_defense(d, strategy=self.strategy) for d in detections]
        answer_before = self._answer(batch, logits_before, [d.frame_labels for d in detections])
        rebuilt: list[list[int]] = [[] for _ in range(n)]
        defended = batch.cpu().clone()
        seconds_defend = [0.0] * n

        idx = [i for i, d in enumerate(defenses) if d == "temporal"]
        if idx:
            mask = torch.zeros(len(idx), batch.shape[1], dtype=torch.bool)
            for row, i in enumerate(idx):
                rebuilt[i] = polluted_frames(detections[i], self.polluted)
                mask[row, rebuilt[i]] = True
            if mask.any():
                t0 = time.perf_counter()
                defended[idx] = self.temporal(batch[idx].cpu(), polluted=mask).cpu()
                share = (time.perf_counter() - t0) / len(idx)
                for i in idx:
                    seconds_defend[i] = share
        squeezed = [False] * n
        check = self.squeeze_check and self.strategy == "routed"
        idx = [i for i, d in enumerate(defenses) if d == "spatial" or (check and d == "none")]
        if idx:
            t0 = time.perf_counter()
            purified = self.spatial(batch[idx]).cpu()
            share = (time.perf_counter() - t0) / len(idx)
            if check:
                labels_after = self._answer(purified, self._classify(purified))
            for row, i in enumerate(idx):
                if defenses[i] == "none":  # the squeeze check, on the pipeline's answers
                    changed = int(labels_after[row]) != int(answer_before[i])
                    defenses[i] = route_defense(detections[i], strategy=self.strategy, label_changed_by_spatial=changed)
                    if defenses[i] == "none":
                        continue  # passed: keep the video as it is
                    squeezed[i] = True
                defended[i] = purified[row]
                seconds_defend[i] = share

        # Classify again only the videos that changed.
        logits = logits_before.clone()
        changed = [i for i in range(n) if defenses[i] != "none" and (defenses[i] != "temporal" or rebuilt[i])]
        t0 = time.perf_counter()
        if changed:
            logits[changed] = self._classify(defended[changed])
        t_classify = t_classify_before + time.perf_counter() - t0
        probs = logits.softmax(dim=-1)
        answer = answer_before.clone()
        if changed:
            answer[changed] = self._answer(defended[changed], logits[changed])

        out = []
        for i, det in enumerate(detections):
            out.append(
                PipelineResult(
                    verdict=det.verdict,
                    alpha=det.alpha,
                    score=det.alpha if det.score is None else float(det.score),
                    frame_labels=list(det.frame_labels),
                    exception_frames=list(det.exception_frames),
                    defense=defenses[i] if (defenses[i] != "temporal" or rebuilt[i]) else "none",
                    rebuilt_frames=rebuilt[i],
                    label=int(answer[i]),
                    probs=probs[i].tolist(),
                    label_before=int(logits_before[i].argmax()),
                    probs_before=logits_before[i].softmax(-1).tolist(),
                    defended=defended[i],
                    squeezed=squeezed[i],
                    vote_flag=self.vote and int(answer_before[i]) != int(logits_before[i].argmax()),
                    seconds={"detect": t_detect / n, "defend": seconds_defend[i], "classify": t_classify / n},
                )
            )
        return out


def model_view_windows(path, spec, *, max_frames: int | None = None):
    """Consecutive windows of ``spec.frames`` frames of a video file, as the model sees them
    (:func:`vidshield.data.transforms.model_view_chunks`, shared with ``detect``).

    The last window is aligned to the end of the video (it may overlap the one before), so every
    frame is in a window; a video shorter than one window gives one shorter window.

    Yields:
        ``(start, clip float32 (t, 3, H, W))``; memory holds at most two windows.
    """
    from vidshield.data.transforms import model_view_chunks

    previous = None
    for start, chunk in model_view_chunks(path, spec, chunk_frames=spec.frames):
        if max_frames is not None and start >= max_frames:
            return
        if chunk.shape[0] < spec.frames and previous is not None:
            need = spec.frames - chunk.shape[0]
            yield start - need, torch.cat([previous[-need:], chunk])
        else:
            yield start, chunk
        previous = chunk


@dataclass
class ScanResult:
    """The pipeline over a whole video file, window by window.

    Attributes:
        windows: ``(start frame, PipelineResult)`` per window of the model's clip length: summaries
            (verdict, alpha, labels, probabilities), without the defended video (``defended`` is
            None), so a scan's memory grows by a few hundred bytes per window.
        verdict: the most severe window verdict.
        label_before, label: the video's class before and after defense (mean of the window
            probabilities; with the pipeline's ``vote``, ``label`` is the majority of the windows'
            answers, ties broken by those probabilities).
        probs_before, probs: those mean probabilities.
        num_frames: frames scanned (the frames that decoded).
        frames_declared: frames the container declares (None if it does not say).
        warnings: damage found while decoding (frames skipped, a file that looks truncated).
        truncated: the file's data ends before what its container declares (or demuxing broke
            off): the frames that decode were scanned (:func:`scan_file` with ``strict`` refuses).
        windows_fired: windows the detector did not call clean.
        windows_allowed: with a false-alarm budget, windows that may fire on a clean video of this
            length (:func:`~vidshield.detection.calibration.windows_allowed`); None without one.
        domain: the in-domain check (:func:`domain_check`'s dict) when the scan made it, else None.
    """

    windows: list[tuple[int, PipelineResult]]
    verdict: str
    label_before: int
    label: int
    probs_before: list[float]
    probs: list[float]
    num_frames: int
    frames_declared: int | None = None
    warnings: list[str] = field(default_factory=list)
    truncated: bool = False
    windows_fired: int = 0
    windows_allowed: int | None = None
    domain: dict | None = None

    def frame_labels(self) -> list[int]:
        """Per-frame labels of the detection network over the whole video (later windows win)."""
        labels = [0] * self.num_frames
        for start, r in self.windows:
            labels[start : start + len(r.frame_labels)] = r.frame_labels
        return labels

    def exception_frames(self) -> list[int]:
        return sorted({start + f for start, r in self.windows for f in r.exception_frames})

    def to_dict(self, class_names: list[str] | None = None) -> dict:
        name = (lambda i: class_names[i]) if class_names else str
        return {
            "verdict": self.verdict,
            "num_frames": self.num_frames,
            "frames_decoded": self.num_frames,
            "frames_declared": self.frames_declared,
            "truncated": self.truncated,
            "warnings": [printable(w) for w in self.warnings],
            "label_before": self.label_before,
            "label": self.label,
            "class_before": name(self.label_before),
            "class": name(self.label),
            "exception_frames": self.exception_frames(),
            "windows_fired": self.windows_fired,
            "windows_allowed": self.windows_allowed,
            "windows": [{"start": s, **r.to_dict(class_names)} for s, r in self.windows],
        }


def working_spec(pipeline: DefensePipeline) -> InputSpec:
    """The view a scan decodes: the detector's clip length at the larger (by area) of the
    detector's and the classifier's frame sizes; each model then gets its own view of it."""
    d = pipeline.detector.model.input_spec
    c = getattr(pipeline.classifier, "input_spec", d)
    big = c if c.height * c.width > d.height * d.width else d
    return InputSpec(frames=d.frames, height=big.height, width=big.width)


def _same_length_batches(windows, size: int):
    """Group consecutive ``(start, clip)`` windows into lists of up to ``size`` of equal length."""
    batch: list = []
    for item in windows:
        if batch and item[1].shape[0] != batch[0][1].shape[0]:
            yield batch
            batch = []
        batch.append(item)
        del item  # the batch holds it: a window handed on is not kept alive here after its batch
        if len(batch) == size:  # handed on at once: the next window is not decoded ahead of it
            yield batch
            batch = []
    if batch:
        yield batch


class _FrameEmitter:
    """Pass each window's frames to ``callback`` once, in order: the overlap of a window with the
    one before (the last window, aligned to the end) is skipped."""

    def __init__(self, callback):
        self.callback, self.done = callback, 0

    def __call__(self, start: int, frames: torch.Tensor) -> None:
        for t in range(self.done - start, frames.shape[0]):
            self.callback(frames[t])
        self.done = start + frames.shape[0]


def scan_file(
    pipeline: DefensePipeline,
    path,
    *,
    progress=None,
    max_frames: int | None = None,
    on_defended=None,
    batch_windows: int = 4,
    prefetch: int = 4,
    check_domain: bool = False,
    strict: bool = False,
) -> ScanResult:
    """Run the pipeline over a video file in consecutive windows of the detector model's clip
    length, at :func:`working_spec`'s view (see :func:`model_view_windows`; the work is
    :func:`scan_windows`).

    Decoding (FFmpeg scales to that view in the same call) runs in a background thread up to
    ``prefetch`` windows ahead of the models, and ``batch_windows`` windows go through the models
    in one batch; on a CPU the models use one intra-op thread fewer than the cores
    (:func:`~vidshield.utils.fewer_torch_threads`), leaving one to the decoder. Memory:
    ``prefetch + batch_windows`` windows at that view, plus a small summary per window (no video
    tensors are kept). With a false-alarm budget the second pass decodes the video again.

    Args:
        on_defended: as :func:`scan_windows`.
        check_domain: check the video against the detector config's in-domain profile, when it
            has one (``result.domain``, as :func:`domain_check` gives it); a video out of domain
            gets no verdict acted on: nothing is defended (the pipeline as with ``strategy="none"``).
            Where the scan decodes at the detector's view and detects every window undefended
            first (a false-alarm budget), the check uses that pass's own CNN features and frame
            logits (:class:`~vidshield.detection.domain.DomainCheck`); otherwise
            :func:`domain_check` decodes the video once more before the scan.
        strict: refuse a truncated file before any work (one demux pass); by default the frames
            that decode are scanned and ``result.truncated`` says so.

    Raises:
        VideoDecodeError: the file cannot be read, fewer than 3 frames decode, or (``strict``)
            it is truncated.
        VidshieldError: the in-domain profile does not fit the detection network.
    """
    from vidshield.io import probe
    from vidshield.io._source import VideoSource
    from vidshield.utils import fewer_torch_threads, prefetched

    if strict:
        probe(path, strict=True)
    spec = working_spec(pipeline)
    profile = pipeline.detector.config.domain_profile() if check_domain else None
    domain = None
    on_cpu = module_device(pipeline.detector.model).type == "cpu"
    with fewer_torch_threads(1 if on_cpu else 0):  # on a CPU, one core is left to the decoder
        if profile is not None and not _domain_on_first_pass(pipeline, profile, spec, max_frames):
            domain = domain_check(pipeline, path)
            if not domain["in_domain"]:
                pipeline = copy.copy(pipeline)
                pipeline.strategy = "none"  # a verdict outside the calibrated domain is not acted on
            profile = None

        def windows():
            return prefetched(model_view_windows(path, spec, max_frames=max_frames), depth=prefetch)

        result = scan_windows(
            pipeline,
            windows,
            name=path,
            progress=progress,
            on_defended=on_defended,
            batch_windows=batch_windows,
            domain=profile,
        )
    if domain is not None:
        result.domain = domain
    with VideoSource(path) as src:
        result.frames_declared = src.declared_frames()
    return result


def _two_pass(pipeline: DefensePipeline) -> bool:
    """Whether :func:`scan_windows` detects every window undefended first (a false-alarm budget,
    the routed strategy, no squeeze check) and defends in a second pass."""
    budget = pipeline.detector.config.target_fpr
    return budget is not None and pipeline.strategy == "routed" and not pipeline.squeeze_check


def _domain_on_first_pass(pipeline: DefensePipeline, profile, spec: InputSpec, max_frames) -> bool:
    """Whether :func:`scan_file`'s first pass sees exactly the frames :func:`domain_check` would
    (the whole video, decoded at the detector's view) and can make the check on its own pass."""
    d = pipeline.detector.model.input_spec
    return (
        _two_pass(pipeline)
        and max_frames is None
        and (spec.height, spec.width) == (d.height, d.width)
        and profile.embedding == "frame_features"
        and hasattr(pipeline.detector.model, "frame_outputs")
    )


class DecodeDamage(list):
    """The :class:`~vidshield.io.CorruptVideoWarning` messages of a decode (a list of str), and
    ``truncated``: whether one said the data ends early."""

    truncated: bool = False


@contextlib.contextmanager
def decode_damage():
    """Collect the :class:`~vidshield.io.CorruptVideoWarning` messages raised inside (damage found
    while decoding) into the :class:`DecodeDamage` it yields, filled on exit; other warnings pass on."""
    from vidshield.io import CorruptVideoWarning

    damage = DecodeDamage()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CorruptVideoWarning)
        yield damage
    for w in caught:
        if issubclass(w.category, CorruptVideoWarning):
            damage.append(str(w.message))
            damage.truncated = damage.truncated or bool(getattr(w.message, "truncated", False))
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def scan_windows(
    pipeline: DefensePipeline,
    windows,
    *,
    name="video",
    frames_declared: int | None = None,
    damage=(),
    progress=None,
    on_defended=None,
    batch_windows: int = 4,
    domain=None,
) -> ScanResult:
    """:func:`scan_file` on windows however decoded (e.g. on another machine).

    With a false-alarm budget (the detector's ``config.target_fpr``, routed strategy, no squeeze
    check) the scan runs in two passes: the first detects and classifies every window undefended
    and keeps its summary; only when more windows fire than the budget allows over the video's
    length (:meth:`TemporalConsistencyDetector.video_flagged`) does a second pass over the windows
    defend those that fired (their summaries replaced). Otherwise the verdict is ``clean`` and
    nothing is defended. Without a budget, windows are defended as they are detected (one pass).

    Args:
        windows: a function returning an iterator of ``(start, clip float32 (t, 3, H, W))`` at
            :func:`working_spec`'s view, as :func:`model_view_windows` yields them; called again,
            for the same windows, by the second pass.
        name: the video's name in error messages.
        frames_declared: what the container declares (for the result).
        damage: decoding warnings of a decode done elsewhere (:func:`decode_damage`); those raised
            while the first pass iterates ``windows()`` are added.
        on_defended: called with each defended frame, ``float32 (3, H, W)`` at that view, in
            order, as soon as it is known (e.g. a :class:`~vidshield.io.VideoWriter`'s
            ``write``); the overlap of the last window is passed once. With a budget the frames
            come from the second pass (which then always runs: the frames of windows left
            undefended are passed as decoded).
        batch_windows: windows that go through the models in one batch.
        domain: a :class:`~vidshield.detection.domain.DomainProfile` to check the video against
            on the first pass's own detection (needs the two passes and windows at the detector's
            view; every frame counted once): ``result.domain``; out of domain, no window is
            defended (the second pass then only passes the frames on).

    Raises:
        VideoDecodeError: no window, or one of fewer than 3 frames.
        VidshieldError: ``domain`` does not fit the detection network's features.
    """
    from vidshield.detection.calibration import windows_allowed
    from vidshield.detection.domain import DomainCheck
    from vidshield.detection.exception import VERDICTS
    from vidshield.errors import VideoDecodeError, VidshieldError

    budget = pipeline.detector.config.target_fpr
    two_pass = _two_pass(pipeline)
    if domain is not None and not two_pass:
        raise ValueError("the in-domain check on the first pass needs the two-pass scan (a false-alarm budget)")
    check = DomainCheck(domain) if domain is not None else None
    checked = 0  # frames given to the in-domain check
    observed: list = []  # (frame logits, features) of the batch's detection pass
    observe = (lambda f, e: observed.append((f, e))) if check is not None else None
    first = copy.copy(pipeline)
    if two_pass:
        first.strategy = "none"

    def batches():
        yield from _same_length_batches(windows(), batch_windows)

    summaries: list[tuple[int, PipelineResult]] = []
    emit = _FrameEmitter(on_defended) if on_defended is not None and not two_pass else None
    task = progress.add_task("scanning", total=None) if progress is not None else None
    with decode_damage() as found:
        for batch in batches():
            if batch[0][1].shape[0] < 3:
                raise VideoDecodeError(
                    name, f"only {batch[0][1].shape[0]} decodable frame(s); detection needs at least 3"
                )
            results = first.run(torch.stack([clip for _, clip in batch]), observe=observe)
            if check is not None:
                logits, features = (torch.cat(parts) for parts in zip(*observed))
                observed.clear()
                for k, (start, clip) in enumerate(batch):  # the last window's overlap once
                    skip = max(checked - start, 0)
                    try:
                        check.add(logits[k, skip:], features[k, skip:])
                    except ValueError as e:  # a profile of other features (as domain_check says it)
                        raise VidshieldError(f"in-domain check: {printable(e)}") from e
                    checked = start + clip.shape[0]
            for (start, _), result in zip(batch, results):
                if emit is not None:
                    emit(start, result.defended)
                result.defended = None
                summaries.append((start, result))
            if task is not None:
                progress.advance(task, sum(clip.shape[0] for _, clip in batch))
            del batch, results  # released before the next batch is gathered
    if not summaries:
        raise VideoDecodeError(name, "no decodable frames")
    results = [r for _, r in summaries]
    fired = sum(r.verdict != "clean" for r in results)
    flagged = pipeline.detector.video_flagged(results)
    in_domain = check.result() if check is not None else None
    act = in_domain is None or in_domain["in_domain"]  # out of domain: nothing defended
    if two_pass and (flagged or on_defended is not None):
        todo = {i for i, r in enumerate(results) if r.verdict != "clean"} if flagged and act else set()
        _defend_fired(pipeline, name, batches(), summaries, todo, on_defended, progress)
    probs = torch.tensor([r.probs for _, r in summaries]).mean(0)
    before = torch.tensor([r.probs_before for _, r in summaries]).mean(0)
    label = int(probs.argmax())
    if pipeline.vote:  # the majority of the windows' answers, ties broken by the mean probabilities
        label = int(frame_vote(torch.tensor([[r.label for _, r in summaries]]), probs.numel(), probs[None])[0])
    verdict = max((r.verdict for _, r in summaries), key=VERDICTS.index) if flagged else "clean"
    last_start, last = summaries[-1]
    return ScanResult(
        windows=summaries,
        verdict=verdict,
        label_before=int(before.argmax()),
        label=label,
        probs_before=before.tolist(),
        probs=probs.tolist(),
        num_frames=last_start + len(last.frame_labels),
        frames_declared=frames_declared,
        warnings=[*damage, *found],
        truncated=bool(getattr(damage, "truncated", False) or found.truncated),
        windows_fired=fired,
        windows_allowed=None if budget is None else windows_allowed(len(summaries), budget),
        domain=in_domain,
    )


def _defend_fired(pipeline: DefensePipeline, path, batches, windows: list, todo: set[int], on_defended, progress):
    """:func:`scan_windows`'s second pass: the windows again (``batches``, decoded again for a
    file, as the first pass had them), run ``pipeline`` on the windows numbered in ``todo`` and replace their summaries in
    ``windows``; pass every defended frame to ``on_defended`` (frames of the other windows as
    decoded). Without ``on_defended`` decoding stops after the last window in ``todo``."""
    from contextlib import closing

    from vidshield.errors import VideoDecodeError
    from vidshield.io import CorruptVideoWarning

    if not todo and on_defended is None:
        return
    emit = _FrameEmitter(on_defended) if on_defended is not None else None
    last = max(todo, default=-1)
    task = progress.add_task("defending the windows that fired", total=None) if progress is not None and todo else None
    i = 0
    with warnings.catch_warnings(), closing(batches):  # the first pass reported the damage
        warnings.simplefilter("ignore", CorruptVideoWarning)
        for batch in batches:
            if i + len(batch) > len(windows) or any(start != windows[i + k][0] for k, (start, _) in enumerate(batch)):
                raise VideoDecodeError(path, "the video decoded differently on the second pass")
            rows = [k for k in range(len(batch)) if i + k in todo]
            defended = {}
            if rows:
                again = pipeline.run(torch.stack([batch[k][1] for k in rows]))
                for k, result in zip(rows, again):
                    defended[k], result.defended = result.defended, None
                    windows[i + k] = (windows[i + k][0], result)
                if task is not None:
                    progress.advance(task, sum(batch[k][1].shape[0] for k in rows))
            if emit is not None:
                for k, (start, clip) in enumerate(batch):
                    emit(start, defended.get(k, clip))
            i += len(batch)
            if emit is None and i > last:
                break


def domain_check(pipeline: DefensePipeline, path) -> dict | None:
    """The in-domain check of a video file (:func:`vidshield.detection.domain.check_file`:
    ``{"in_domain", "statistics", "reasons"}``) when the detector config holds a profile, else
    None. A video out of domain gets no verdict acted on: ``scan`` and ``scan-corpus`` then scan it
    with ``strategy="none"``. Decoding damage is left to the scan to report.

    Raises:
        VidshieldError: a profile fitted on another embedding, or no frame decoded.
    """
    from vidshield.detection.domain import check_file
    from vidshield.errors import VidshieldError
    from vidshield.io import CorruptVideoWarning

    profile = pipeline.detector.config.domain_profile()
    if profile is None:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CorruptVideoWarning)
            return check_file(profile, pipeline.detector.model, path)
    except ValueError as e:
        raise VidshieldError(f"in-domain check: {printable(e)}") from e


#: the report's verdict when the video is outside the detection network's calibrated domain
OUT_OF_DOMAIN = "out_of_domain"


def reported_verdict(detector_verdict: str, in_domain: bool | None) -> str:
    """The verdict a report gives: the detector's (``clean`` / ``sparse`` / ``dense``), or
    :data:`OUT_OF_DOMAIN` when the in-domain check failed (no verdict is acted on there)."""
    return OUT_OF_DOMAIN if in_domain is False else detector_verdict


def scan_report(
    pipeline: DefensePipeline,
    result: ScanResult,
    *,
    video: str,
    model: str,
    classifier: str | None,
    config: str | None = None,
    domain: dict | None = None,
) -> dict:
    """The JSON report of one scanned file (what ``vidshield scan --json`` prints, less the paths of
    the files it writes): the video's name, the models and the classifier's label space, the
    thresholds, whether the answer is the per-frame vote, the false-alarm budget, the detection
    network (``detection_network``: the model, or the one its checkpoint names), and
    :meth:`ScanResult.to_dict`. The classifier is named
    ``classifier`` (the reference it was built from); when None, by the ``source`` it records (the
    classifier a distilled detection network serves), else it is the detection network ``model``.
    ``config`` names the detector config used and ``domain`` is the in-domain check
    (:func:`vidshield.detection.domain.check_file`; None: not checked), reported as ``config``,
    ``in_domain`` and ``domain``; ``about`` is the line saying which classifier and label space the
    verdict is about (:func:`label_space_line`), and ``domain_warning`` the one line that replaces
    the verdict out of domain (None in domain or unchecked). ``verdict`` is
    :func:`reported_verdict` (``out_of_domain`` there) and ``detector_verdict`` what the detector
    alone said. The shape is :data:`vidshield.schema.SCAN_REPORT_SCHEMA`."""
    names = pipeline.classifier.class_names
    classifier = classifier or getattr(pipeline.classifier, "source", None) or model
    out_of_domain = domain is not None and not domain["in_domain"]
    return {
        "video": video,
        "model": model,
        "classifier": classifier,
        "label_space": names,
        "score_name": pipeline.detector.score,
        "gamma1": pipeline.detector.gamma1,
        "gamma2": pipeline.detector.gamma2,
        "vote": pipeline.vote,
        "squeeze_check": pipeline.squeeze_check,
        "target_fpr": pipeline.detector.config.target_fpr,
        "detection_network": pipeline.detector.config.model,
        "config": config,
        "in_domain": None if domain is None else domain["in_domain"],
        "domain": domain,
        "about": label_space_line(classifier, names),
        "domain_warning": (
            f"out of domain for {model} ({'; '.join(domain['reasons'])}): no verdict, nothing defended"
            if out_of_domain
            else None
        ),
        **result.to_dict(names),
        "verdict": reported_verdict(result.verdict, None if domain is None else domain["in_domain"]),
        "detector_verdict": result.verdict,
        "schema": SCAN_REPORT_VERSION,
    }


def timeline_thumbnails(path, num_frames: int, *, count: int = 8, short_side: int = 72) -> dict:
    """``count`` frames spread evenly over a scanned file, for the scan picture: one more decode
    pass at a small size (``short_side`` pixels), damage warnings dropped (the scan reported them).

    Returns:
        ``{frame index: uint8 (h, w, 3)}`` (fewer when fewer frames decode).
    """
    from vidshield.io import CorruptVideoWarning, iter_frames
    from vidshield.io.read import uniform_indices

    wanted = set(uniform_indices(num_frames, min(count, num_frames)).tolist())
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CorruptVideoWarning)
        for i, frame in enumerate(iter_frames(path, short_side=short_side)):
            if i in wanted:
                out[i] = frame
            if i >= max(wanted):
                break
    return out


def label_space_line(classifier: str, names: list[str] | None) -> str:
    """``"classifier: NAME (K classes: a, b, ...); the verdict is about this label space"``: what
    ``scan`` prints and its report (and the service's) carry as ``about``."""
    space = f"{len(names)} classes: {', '.join(names[:5])}{' ...' if len(names) > 5 else ''}" if names else "unnamed"
    return f"classifier: {classifier} ({space}); the verdict is about this label space"


def defended_frames_at(pipeline: DefensePipeline, path, scan: ScanResult, frames) -> dict[int, tuple]:
    """Some frames of a scanned file as decoded and as :func:`scan_file` defended them, without
    keeping the video: decodes again (at :func:`working_spec`'s view) up to the last frame asked
    for and runs ``pipeline`` again on the windows holding them that the scan defended (a window
    whose summary says ``none`` was passed on as decoded).

    Args:
        scan: what :func:`scan_file` returned for ``path`` with ``pipeline``.
        frames: global frame indices (< ``scan.num_frames``); a handful (thumbnails).

    Returns:
        ``{frame: (decoded, defended)}``, each ``float32 (3, H, W)`` in [0, 1].
    """
    from contextlib import closing

    from vidshield.io import CorruptVideoWarning

    owner: dict[int, list[int]] = {}  # window -> its frames asked for (a frame's first window, as emitted)
    for t in sorted(set(frames)):
        i = next((i for i, (s, r) in enumerate(scan.windows) if s <= t < s + len(r.frame_labels)), None)
        if i is None:
            raise ValueError(f"frame {t} is not in the scan ({scan.num_frames} frames)")
        owner.setdefault(i, []).append(t)
    out: dict[int, tuple] = {}
    if not owner:
        return out
    windows = model_view_windows(path, working_spec(pipeline))
    with warnings.catch_warnings(), closing(windows):  # the scan reported the damage
        warnings.simplefilter("ignore", CorruptVideoWarning)
        for i, (start, clip) in enumerate(windows):
            if i in owner:
                defended = clip if scan.windows[i][1].defense == "none" else pipeline.run(clip)[0].defended
                for t in owner[i]:
                    out[t] = (clip[t - start], defended[t - start])
            if i >= max(owner):
                break
    return out


def full_resolution_plan(scan: ScanResult) -> tuple[set[int], set[int]]:
    """From a model-view scan, the frames to defend at full resolution: ``(temporal frames,
    spatial frames)`` as global frame indices. A frame in a dense window is purified spatially;
    the rebuilt frames of sparse windows are rebuilt temporally."""
    temporal, spatial = set(), set()
    for start, r in scan.windows:
        if r.defense == "spatial":
            spatial.update(range(start, start + len(r.frame_labels)))
        elif r.defense == "temporal":
            temporal.update(start + f for f in r.rebuilt_frames)
    return temporal - spatial, spatial


def defend_frames_full_resolution(
    path,
    temporal_frames: set[int],
    spatial_frames,
    *,
    temporal,
    spatial,
    device="cpu",
    progress=None,
):
    """Stream a video at its own resolution and defend the given frames, without a float copy of
    the frames no defense touches.

    Spatial frames go through ``spatial`` in runs of at most
    ``spatial.frames_per_pass(H, W)`` frames (its memory budget; 8 for a defense without one);
    temporal frames are rebuilt by ``temporal`` on the decoded frames
    (:func:`~vidshield.defenses.temporal.defend_stream`'s uint8 path). Memory: one run of spatial
    frames or of consecutive temporal frames, plus a clean frame.

    Yields:
        uint8 RGB frames ``(H, W, 3)``, in order: spatial frames purified (rounded to 8 bits),
        temporal frames rebuilt from their nearest clean neighbours, the others as decoded.
    """
    import numpy as np

    from vidshield.defenses.temporal import defend_stream
    from vidshield.io import iter_frames
    from vidshield.video import frames_to_tensor, tensor_to_frames

    task = progress.add_task("defending", total=None) if progress is not None else None

    def purify(run: list) -> list:
        if not run:
            return []
        out = spatial(frames_to_tensor(np.stack(run)).unsqueeze(0).to(device))[0]
        return list(tensor_to_frames(out.cpu()))

    def purified():
        run: list = []
        per_pass = None
        for i, frame in enumerate(iter_frames(path)):
            if i not in spatial_frames:
                yield from purify(run)
                run = []
                yield frame
                continue
            if per_pass is None:
                sizer = getattr(spatial, "frames_per_pass", None)
                per_pass = sizer(*frame.shape[:2]) if sizer is not None else 8
            run.append(frame)
            if len(run) == per_pass:
                yield from purify(run)
                run = []
        yield from purify(run)

    def counted(frames):
        for frame in frames:
            yield frame
            if task is not None:
                progress.advance(task)

    if not temporal_frames:
        yield from counted(purified())
    else:
        yield from counted(defend_stream(purified(), lambda i: i in temporal_frames, temporal))


def build_pipeline(
    *,
    model: str | None = None,
    classifier: str | None = None,
    config=None,
    comdefend: str | None = None,
    temporal: dict | None = None,
    polluted: str = "exceptions",
    squeeze_check: bool | None = None,
    vote: bool | None = None,
    input_spec=None,
    allow_mismatch: bool = False,
    device="cpu",
) -> DefensePipeline:
    """The detect -> route -> defend -> classify pipeline from references (what ``scan`` and
    ``defend`` build from their options).

    Args:
        model: the detection network (a CNN+LSTM): shipped name or checkpoint; None: the default
            (:data:`~vidshield.detection.detector.DEFAULT_MODEL`, ``ut-lrcn``).
        classifier: the classifier to protect: a shipped name, a checkpoint or a TorchScript file
            (:func:`~vidshield.models.adapter.load_classifier`); it gets its own view of every
            window. None: the classifier a distilled detection network serves (its ``"serves"``
            entry), else the detection network itself; then, when that model's checkpoint names a
            default detection network (``"detector": {"network": NAME}``,
            :func:`~vidshield.detection.model_default_network`), NAME detects and votes for it
            (it must have been trained for it). Naming the classifier keeps ``model`` as the
            detection network.
        config: a detector config (``detector.json``) or its path; None: the shipped model's
            shipped config when there is one, else the paper's thresholds
            (:func:`~vidshield.detection.load_detector`).
        comdefend: ComDefend weights of the spatial defense; None: the ones the classifier's
            checkpoint names (``comdefend-real`` for the UT-Interaction models), else the detection
            network's, else ``comdefend`` (:func:`~vidshield.defenses.spatial.comdefend.model_comdefend`).
        temporal: settings of the temporal defense (registry defaults overridden).
        polluted: as :class:`DefensePipeline`.
        squeeze_check: True / False, or None for the detection network's default (off for every
            shipped network; see :class:`DefensePipeline`).
        vote: the per-frame vote: True / False, or None for the detector's default (the config's
            ``vote``, else the detection network's checkpoint: on for ``synthetic-lrcn``, off for
            ``ut-lrcn``; see :class:`DefensePipeline`).
        input_spec: a TorchScript classifier's input spec (JSON file, JSON string or dict).
        allow_mismatch: pair a detection network with a classifier other than the one it was
            trained for (:func:`~vidshield.detection.train_detector.check_pairing`).

    Raises:
        VidshieldError: a model without a per-frame path, a classifier that cannot be loaded or
            does not fit its spec, or a detection network trained for another classifier
            (:class:`~vidshield.detection.train_detector.PairingError`).
    """
    from vidshield.defenses import create_defense
    from vidshield.defenses.spatial.comdefend import model_comdefend
    from vidshield.detection import load_detector, model_default_network
    from vidshield.detection.train_detector import check_pairing, served_classifier
    from vidshield.models import load_model
    from vidshield.models.adapter import load_classifier

    detector = load_detector(model, config, vote=vote, device=device)
    served = served_classifier(detector.model)
    network = model_default_network(detector.model) if classifier is None and served is None else None
    if classifier is None and served is not None and served.get("ref"):
        classifier = served["ref"]
    if classifier is None:
        net = detector.model
    else:
        net = load_classifier(classifier, input_spec=input_spec, device=device)
    if network is not None:  # the model alone: it classifies, its named network detects and votes
        config = replace(detector.config, model=network)
        detector = TemporalConsistencyDetector.from_config(
            config, load_model(network, device=device), batch_size=detector.batch_size
        )
    check_pairing(detector.model, net, allow_mismatch=allow_mismatch)
    if comdefend is None:
        comdefend = model_comdefend(net, default=model_comdefend(detector.model))
    return DefensePipeline(
        net,
        detector,
        temporal=create_defense("temporal", **(temporal or {})),
        spatial=create_defense("spatial", weights=comdefend).to(device),
        polluted=polluted,
        squeeze_check=squeeze_check,
    )


@dataclass
class DefendResult:
    """What :func:`defend_file` did to a video file.

    Attributes:
        output: the file written.
        num_frames: frames written; ``size``: their ``(height, width)``.
        fps: the input's frame rate (None when unknown; the output is written at 25).
        temporal_frames: frames rebuilt by the temporal defense.
        spatial_frames: how many frames another defense purified.
        verdict: the detector's verdict (``auto`` only; None otherwise).
        model_view: the output is at the model's view (``auto`` with ``model_view=True``).
    """

    output: object
    num_frames: int
    size: tuple[int, int]
    fps: float | None
    temporal_frames: list[int]
    spatial_frames: int
    verdict: str | None = None
    model_view: bool = False


def comparison_frames(result: DefendResult, count: int = 4) -> list[int]:
    """The frames a before / after picture of :func:`defend_file`'s work shows: up to ``count`` of
    the frames the temporal defense rebuilt, else ``count`` frames spread over the video."""
    from vidshield.io.read import uniform_indices

    if result.temporal_frames:
        picked = result.temporal_frames
        step = max(1, len(picked) // count)
        return sorted(picked[::step][:count])
    return sorted(set(uniform_indices(result.num_frames, min(count, result.num_frames)).tolist()))


def read_frame_pairs(before_path, after_path, frames: list[int]) -> list[tuple[int, object, object]]:
    """``(frame, before, after)`` for each of ``frames`` (uint8 ``(H, W, 3)``): the input decoded
    at the output's size (the output may be at the model's view), damage warnings dropped."""
    from vidshield.io import CorruptVideoWarning, iter_frames, probe

    info = probe(after_path)
    wanted = set(frames)

    def pick(path, **geometry):
        out = {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CorruptVideoWarning)
            for i, frame in enumerate(iter_frames(path, **geometry)):
                if i in wanted:
                    out[i] = frame
                if i >= max(wanted):
                    break
        return out

    before = pick(before_path, size=(info.height, info.width))
    after = pick(after_path)
    return [(t, before[t], after[t]) for t in sorted(wanted) if t in before and t in after]


#: Above this estimate (seconds), :func:`defend_file` asks before a spatial defense (the CLI's ``--yes``).
SLOW_SPATIAL_SECONDS = 180.0


def _check_spatial_time(spatial, frames: int, size: tuple[int, int], device, limit: float | None) -> float | None:
    """Estimate the spatial defense's time; raise a VidshieldError with the options when over ``limit``."""
    from vidshield.errors import VidshieldError

    estimate = getattr(spatial, "estimate_seconds", None)
    if not frames or estimate is None:
        return None
    seconds = estimate(frames, *size)
    if limit is not None and seconds > limit:
        where = torch.device(device).type
        minutes = f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"
        raise VidshieldError(
            f"the spatial defense (ComDefend) of {frames} frame(s) at {size[1]}x{size[0]} on the {where} would take "
            f"about {minutes}; rerun with --yes to go ahead, --model-view (auto) to defend at the model's view, "
            "or --device cuda"
        )
    return seconds


def defend_file(
    path,
    method: str = "auto",
    *,
    output,
    settings: dict | None = None,
    pipeline: DefensePipeline | None = None,
    frames: list[int] | None = None,
    every: int | None = None,
    device="cpu",
    progress=None,
    model_view: bool = False,
    max_spatial_seconds: float | None = None,
    on_estimate=None,
) -> DefendResult:
    """Defend a video file at its own resolution, writing ``output`` as the frames are defended.

    Frames stream from the decoder through the defense into the encoder (a
    :class:`~vidshield.io.VideoWriter`): memory holds a run of frames being defended, not the
    video (except ``h264``, a defense over the whole clip). The file appears complete or not
    at all.

    Args:
        output: the video file to write (format from its suffix, as :func:`~vidshield.io.write_video`).
        method: ``auto`` (detect at the model's view with ``pipeline``, e.g. from
            :func:`build_pipeline`, then defend each window as routed) or the name of a defense of
            the registry (:mod:`vidshield.defenses.registry`) applied to the whole video, built
            with ``settings`` over its defaults (H.264 encodes at the file's frame rate).
        frames, every: the temporal defense's frames: these indices, or every frame but the key
            frames 0, k, 2k, ... (``method="temporal"``).
        device: where the spatial defenses run.
        model_view: ``auto`` only: write the video the scan defended, at the model's view.
        max_spatial_seconds: refuse (before any frame is defended) when the spatial defense is
            estimated to take longer (``SpatialDefense.estimate_seconds``); None: no limit.
        on_estimate: called with that estimate in seconds, when there is one.

    Raises:
        VidshieldError: a frame index beyond the video's last frame, or a spatial defense over
            ``max_spatial_seconds`` (the message gives the estimate and the options).
    """
    from vidshield.defenses import create_defense
    from vidshield.defenses.temporal import defend_stream
    from vidshield.errors import VidshieldError
    from vidshield.io import VideoWriter, iter_frames, probe, read_video
    from vidshield.video import tensor_to_frames

    info = probe(path)
    fps = info.fps
    size = (info.height, info.width)
    writer = VideoWriter(output, fps=float(fps or 25.0))
    if method != "auto":
        settings = dict(settings or {})
        if method == "h264":
            settings.setdefault("fps", max(1, round(fps or 25)))
        defense = create_defense(method, **settings)
        if defense.frame_wise:
            defense = defense.to(device)
    temporal_frames: list[int] = []
    spatial_count, verdict = 0, None

    def estimate(spatial, count: int) -> None:
        seconds = _check_spatial_time(spatial, count, size, device, max_spatial_seconds)
        if seconds is not None and on_estimate is not None:
            on_estimate(seconds)

    with writer:
        if method == "auto" and model_view:
            scan = scan_file(pipeline, path, progress=progress, on_defended=writer.write)
            planned_t, planned_s = full_resolution_plan(scan)
            return DefendResult(
                writer.close(),
                writer.frames_written,
                writer.size,
                fps,
                sorted(planned_t),
                len(planned_s),
                scan.verdict,
                model_view=True,
            )
        if method == "auto":
            scan = scan_file(pipeline, path, progress=progress)
            planned_t, planned_s = full_resolution_plan(scan)
            estimate(pipeline.spatial, len(planned_s))
            temporal_frames, spatial_count, verdict = sorted(planned_t), len(planned_s), scan.verdict
            stream = defend_frames_full_resolution(
                path,
                planned_t,
                planned_s,
                temporal=pipeline.temporal,
                spatial=pipeline.spatial,
                device=device,
                progress=progress,
            )
        elif method == "temporal":
            wanted = set(frames or [])

            def is_polluted(i: int) -> bool:
                return i in wanted if wanted else i % every != 0

            stream = defend_stream(iter_frames(path), is_polluted, defense)
        elif defense.frame_wise:  # purified run by run
            estimate(defense, info.num_frames)
            stream = defend_frames_full_resolution(
                path, set(), _AllFrames(), temporal=None, spatial=defense, device=device, progress=progress
            )
        else:  # a defense over the whole video (H.264): the clip in memory
            stream = tensor_to_frames(defense(read_video(path).unsqueeze(0))[0].cpu())
        task = progress.add_task("defending", total=None) if progress is not None and method == "temporal" else None
        for frame in stream:
            writer.write(frame)
            if task is not None:
                progress.advance(task)
        n = writer.frames_written
        if method == "temporal":
            if wanted and max(wanted) >= n:
                raise VidshieldError(f"--frames: frame {max(wanted)} is beyond the last frame ({n - 1})")
            temporal_frames = [i for i in range(n) if is_polluted(i)]
        elif method != "auto":
            spatial_count = n
    return DefendResult(writer.path, n, writer.size, fps, temporal_frames, spatial_count, verdict)


class _AllFrames:
    """``i in _AllFrames()`` for every frame index (a stream of unknown length)."""

    def __contains__(self, i: int) -> bool:
        return True

"""The paper's framework (its Figure 1): detect -> route -> defend -> classify, on clips
(:class:`DefensePipeline`) and on whole files (:func:`scan_file`, :func:`defend_frames_full_resolution`).

The routing itself (verdict -> defense, the squeeze check, which frames the temporal defense
rebuilds) lives in :mod:`vidshield.routing`; the fixed strategies of Table 4 (no defense, spatial
only, temporal only) run through the same code, so the comparison is like for like.
"""

from __future__ import annotations

import copy
import time
import warnings
from dataclasses import dataclass, field

import torch

from vidshield.detection import TemporalConsistencyDetector
from vidshield.detection.vote import frame_vote
from vidshield.models.adapter import resample_video
from vidshield.models.base import InputSpec
from vidshield.routing import POLLUTED_RULES, STRATEGIES, polluted_frames, route_defense
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
            defense ran), on CPU.
        squeezed: routed clean but caught by the squeeze check (so spatially defended).
        vote_flag: with ``vote``: the classifier's label of the input differs from the majority of
            its per-frame labels (reported as a detection; the answer is the vote either way).
        seconds: wall-clock seconds per stage (``detect``, ``defend``, ``classify``), this
            video's share of its batch.
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
    defended: torch.Tensor = field(repr=False)
    squeezed: bool = False
    seconds: dict[str, float] = field(default_factory=dict)
    vote_flag: bool = False

    def to_dict(self, class_names: list[str] | None = None) -> dict:
        """JSON-ready summary (without the video tensor)."""
        d = {
            "verdict": self.verdict,
            "alpha": self.alpha,
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
            clean cost), ``ut-lrcn`` does not (its weak per-frame network costs clean accuracy,
            48.3 % -> 38.3 %); figures in ``results/security.md``.

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
        squeeze_check: bool = False,
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
        self.squeeze_check = squeeze_check
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
    def run(self, video: torch.Tensor) -> list[PipelineResult]:
        """Run on ``(N, T, 3, H, W)`` or ``(T, 3, H, W)`` float in [0, 1]; one result per video."""
        check_video(video)
        batch = video.unsqueeze(0) if video.dim() == 4 else video
        results: list[PipelineResult] = []
        for i in range(0, batch.shape[0], self.batch_size):
            results.extend(self._run_batch(batch[i : i + self.batch_size]))
        return results

    def _run_batch(self, batch: torch.Tensor) -> list[PipelineResult]:
        n = batch.shape[0]
        same_model = self.classifier is self.detector.model
        t0 = time.perf_counter()
        if same_model:
            detections, logits_before = self.detector.detect_with_logits(batch)
        else:  # the detector's own view: its frame size, the same frames
            detections = self.detector.detect(resample_video(batch, self.detector.model.input_spec, time=False))
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
        windows: ``(start frame, PipelineResult)`` per window of the model's clip length.
        verdict: the most severe window verdict.
        label_before, label: the video's class before and after defense (mean of the window
            probabilities; with the pipeline's ``vote``, ``label`` is the majority of the windows'
            answers, ties broken by those probabilities).
        probs_before, probs: those mean probabilities.
        num_frames: frames scanned (the frames that decoded).
        frames_declared: frames the container declares (None if it does not say).
        warnings: damage found while decoding (frames skipped, a file that looks truncated).
        windows_fired: windows the detector did not call clean.
        windows_allowed: with a false-alarm budget, windows that may fire on a clean video of this
            length (:func:`~vidshield.detection.calibration.windows_allowed`); None without one.
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
    windows_fired: int = 0
    windows_allowed: int | None = None

    def frame_labels(self) -> list[int]:
        """Per-frame labels of the detection network over the whole video (later windows win)."""
        labels = [0] * self.num_frames
        for start, r in self.windows:
            labels[start : start + len(r.frame_labels)] = r.frame_labels
        return labels

    def exception_frames(self) -> list[int]:
        return sorted({start + f for start, r in self.windows for f in r.exception_frames})

    def defended_frames(self):
        """Yield the defended video frame by frame, float32 ``(3, H, W)`` (model view)."""
        done = 0
        for start, r in self.windows:
            for t in range(done - start, r.defended.shape[0]):
                yield r.defended[t]
            done = start + r.defended.shape[0]

    def to_dict(self, class_names: list[str] | None = None) -> dict:
        name = (lambda i: class_names[i]) if class_names else str
        return {
            "verdict": self.verdict,
            "num_frames": self.num_frames,
            "frames_decoded": self.num_frames,
            "frames_declared": self.frames_declared,
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


def scan_file(pipeline: DefensePipeline, path, *, progress=None, max_frames: int | None = None) -> ScanResult:
    """Run the pipeline over a video file in consecutive windows of the detector model's clip
    length, at :func:`working_spec`'s view (see :func:`model_view_windows`). Memory: the windows
    of the video at that view.

    With a false-alarm budget (the detector's ``config.target_fpr``, routed strategy, no squeeze
    check) the scan runs in two passes: every window is detected and classified undefended;
    only when more windows fire than the budget allows over the video's length
    (:meth:`TemporalConsistencyDetector.video_flagged`) are the windows that fired defended.
    Otherwise the verdict is ``clean`` and nothing is defended.
    """
    from vidshield.detection.calibration import windows_allowed
    from vidshield.detection.exception import VERDICTS
    from vidshield.errors import VideoDecodeError
    from vidshield.io import CorruptVideoWarning
    from vidshield.io._source import VideoSource

    budget = pipeline.detector.config.target_fpr
    two_pass = budget is not None and pipeline.strategy == "routed" and not pipeline.squeeze_check
    first = copy.copy(pipeline)
    if two_pass:
        first.strategy = "none"
    windows, clips = [], []
    task = progress.add_task("scanning", total=None) if progress is not None else None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CorruptVideoWarning)
        for start, clip in model_view_windows(path, working_spec(pipeline), max_frames=max_frames):
            if clip.shape[0] < 3:
                raise VideoDecodeError(path, f"only {clip.shape[0]} decodable frame(s); detection needs at least 3")
            (result,) = first.run(clip)
            result.defended = result.defended.clone()
            windows.append((start, result))
            if two_pass:
                clips.append(clip)
            if task is not None:
                progress.advance(task, clip.shape[0])
    for w in caught:
        if not issubclass(w.category, CorruptVideoWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    damage = [str(w.message) for w in caught if issubclass(w.category, CorruptVideoWarning)]
    with VideoSource(path) as src:
        declared = src.declared_frames()
    results = [r for _, r in windows]
    fired = sum(r.verdict != "clean" for r in results)
    flagged = pipeline.detector.video_flagged(results)
    if two_pass and flagged:
        for i, (start, r) in enumerate(windows):
            if r.verdict != "clean":
                (again,) = pipeline.run(clips[i])
                again.defended = again.defended.clone()
                windows[i] = (start, again)
    probs = torch.tensor([r.probs for _, r in windows]).mean(0)
    before = torch.tensor([r.probs_before for _, r in windows]).mean(0)
    label = int(probs.argmax())
    if pipeline.vote:  # the majority of the windows' answers, ties broken by the mean probabilities
        label = int(frame_vote(torch.tensor([[r.label for _, r in windows]]), probs.numel(), probs[None])[0])
    verdict = max((r.verdict for _, r in windows), key=VERDICTS.index) if flagged else "clean"
    last_start, last = windows[-1]
    return ScanResult(
        windows=windows,
        verdict=verdict,
        label_before=int(before.argmax()),
        label=label,
        probs_before=before.tolist(),
        probs=probs.tolist(),
        num_frames=last_start + len(last.frame_labels),
        frames_declared=declared,
        warnings=damage,
        windows_fired=fired,
        windows_allowed=None if budget is None else windows_allowed(len(windows), budget),
    )


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
    spatial_frames: set[int],
    *,
    temporal,
    spatial,
    device="cpu",
    chunk_frames: int = 32,
    progress=None,
):
    """Stream a video at its own resolution and defend the given frames.

    Yields:
        float32 frames ``(3, H, W)`` in [0, 1], in order: spatial frames purified by ``spatial``,
        temporal frames rebuilt by ``temporal`` from their nearest clean neighbours, the others
        unchanged.
    """
    from vidshield.defenses.temporal import defend_stream
    from vidshield.io import iter_chunks

    task = progress.add_task("defending", total=None) if progress is not None else None

    def purified():
        for start, chunk in iter_chunks(path, chunk_frames=chunk_frames):
            rows = [i for i in range(chunk.shape[0]) if start + i in spatial_frames]
            if rows:
                chunk = chunk.clone()
                chunk[rows] = spatial(chunk[rows].unsqueeze(0).to(device))[0].cpu()
            yield from chunk.unbind(0)
            if task is not None:
                progress.advance(task, chunk.shape[0])

    if not temporal_frames:
        yield from purified()
    else:
        yield from defend_stream(purified(), lambda i: i in temporal_frames, temporal)


def build_pipeline(
    *,
    model: str | None = None,
    classifier: str | None = None,
    config=None,
    comdefend: str = "comdefend",
    temporal: dict | None = None,
    polluted: str = "exceptions",
    squeeze_check: bool = False,
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
            entry), else the detection network itself.
        config: a detector config (``detector.json``) or its path; None: the shipped model's
            shipped config when there is one, else the paper's thresholds
            (:func:`~vidshield.detection.load_detector`).
        comdefend: ComDefend weights of the spatial defense.
        temporal: settings of the temporal defense (registry defaults overridden).
        polluted, squeeze_check: as :class:`DefensePipeline`.
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
    from vidshield.detection import load_detector
    from vidshield.detection.train_detector import check_pairing, served_classifier
    from vidshield.models.adapter import load_classifier

    detector = load_detector(model, config, vote=vote, device=device, batch_size=1)
    served = served_classifier(detector.model)
    if classifier is None and served is not None and served.get("ref"):
        classifier = served["ref"]
    if classifier is None:
        net = detector.model
    else:
        net = load_classifier(classifier, input_spec=input_spec, device=device)
    check_pairing(detector.model, net, allow_mismatch=allow_mismatch)
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
        frames: the defended video, ``uint8 (T, H, W, 3)`` at the file's resolution.
        fps: the file's frame rate (None when unknown).
        temporal_frames: frames rebuilt by the temporal defense.
        spatial_frames: how many frames another defense purified.
        verdict: the detector's verdict (``auto`` only; None otherwise).
    """

    frames: object
    fps: float | None
    temporal_frames: list[int]
    spatial_frames: int
    verdict: str | None = None


def _to_uint8(frames) -> object:
    import numpy as np

    return np.stack([f.mul(255).round_().clamp_(0, 255).to(torch.uint8).permute(1, 2, 0).cpu().numpy() for f in frames])


def defend_file(
    path,
    method: str = "auto",
    *,
    settings: dict | None = None,
    pipeline: DefensePipeline | None = None,
    frames: list[int] | None = None,
    every: int | None = None,
    device="cpu",
    progress=None,
) -> DefendResult:
    """Defend a video file at its own resolution.

    Args:
        method: ``auto`` (detect at the model's view with ``pipeline``, e.g. from
            :func:`build_pipeline`, then defend each window as routed) or the name of a defense of
            the registry (:mod:`vidshield.defenses.registry`) applied to the whole video, built
            with ``settings`` over its defaults (H.264 encodes at the file's frame rate).
        frames, every: the temporal defense's frames: these indices, or every frame but the key
            frames 0, k, 2k, ... (``method="temporal"``).
        device: where the spatial defenses run.

    Raises:
        VidshieldError: a frame index beyond the video's last frame.
    """
    from vidshield.defenses import create_defense
    from vidshield.defenses.temporal import defend_stream
    from vidshield.errors import VidshieldError
    from vidshield.io import iter_chunks, probe, read_video

    fps = probe(path).fps
    if method != "auto":
        settings = dict(settings or {})
        if method == "h264":
            settings.setdefault("fps", max(1, round(fps or 25)))
        defense = create_defense(method, **settings)
        if defense.frame_wise:
            defense = defense.to(device)
    if method == "auto":
        scan = scan_file(pipeline, path, progress=progress)
        temporal_frames, spatial_frames = full_resolution_plan(scan)
        out = defend_frames_full_resolution(
            path,
            temporal_frames,
            spatial_frames,
            temporal=pipeline.temporal,
            spatial=pipeline.spatial,
            device=device,
            progress=progress,
        )
        return DefendResult(_to_uint8(out), fps, sorted(temporal_frames), len(spatial_frames), scan.verdict)
    if method == "temporal":
        wanted = set(frames or [])

        def is_polluted(i: int) -> bool:
            return i in wanted if wanted else i % every != 0

        def stream():
            for _, chunk in iter_chunks(path, chunk_frames=32):
                yield from chunk.to(device).unbind(0)

        task = progress.add_task("defending", total=None) if progress is not None else None
        out = []
        for frame in defend_stream(stream(), is_polluted, defense):
            out.append(frame)
            if task is not None:
                progress.advance(task)
        if wanted and max(wanted) >= len(out):
            raise VidshieldError(f"--frames: frame {max(wanted)} is beyond the last frame ({len(out) - 1})")
        return DefendResult(_to_uint8(out), fps, [i for i in range(len(out)) if is_polluted(i)], 0)
    if defense.frame_wise:  # purified chunk by chunk
        out = _to_uint8(
            defend_frames_full_resolution(
                path, set(), _AllFrames(), temporal=None, spatial=defense, device=device, progress=progress
            )
        )
        return DefendResult(out, fps, [], out.shape[0])
    # a defense over the whole video (H.264): the clip in memory
    task = progress.add_task("defending", total=1) if progress is not None else None
    out = defense(read_video(path).unsqueeze(0))[0]
    if task is not None:
        progress.advance(task)
    return DefendResult(_to_uint8(out.cpu().unbind(0)), fps, [], out.shape[0])


class _AllFrames:
    """``i in _AllFrames()`` for every frame index (a stream of unknown length)."""

    def __contains__(self, i: int) -> bool:
        return True

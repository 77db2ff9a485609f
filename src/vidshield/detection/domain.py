"""Is a video like the clean videos a detector was calibrated on? (the in-domain check)

A verdict is only as good as the thresholds, and the thresholds were measured on some clean
footage. Two statistics of a video, both from the detection network at its own view, say how far
the video is from that footage:

- ``distance``: the median over frames of the Mahalanobis distance of the frame's embedding (the
  network's ``frame_features`` when it has them, e.g. the LRCN's CNN features, else its
  per-frame logits) to the calibration frames' mean, covariance shrunk towards its mean variance
  (``(1 - s) C + s tr(C)/D I``, s = :data:`SHRINKAGE`): what the frames look like;
- ``motion``: the median over neighbouring frame pairs of ``||e_{t+1} - e_t||_2`` (the same
  embedding, not whitened): how fast the picture changes (synthetic shapes and cartoons move
  faster than the calibration footage's people, at the same distance).

Medians over frames, so a sparse attack (a few frames of a window) barely moves them. The median
per-frame max-softmax ``confidence`` is reported too, but not checked: on UT-Interaction's
ut-lrcn it put 4 of 42 held-out clean videos out of a [q0.5 %, q99.5 %] range and no synthetic
video (``results/real-defaults.json``).

The rule: a video is **in domain** when ``distance`` and ``motion`` are each at most the
``q_99.5%`` of the calibration videos' per-video values (being close to the calibration footage,
or slower, is never out of domain). The quantiles are numpy's linear interpolation.
:class:`DomainProfile` holds the mean, the precision matrix and the ranges; it is stored in the
detector config (``DetectorConfig.domain``).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vidshield.utils import eval_mode, module_device

__all__ = [
    "DOMAIN_QUANTILE",
    "SHRINKAGE",
    "DomainProfile",
    "DomainCheck",
    "frame_embeddings",
    "file_embeddings",
    "fit_domain",
    "domain_of",
    "check_file",
]

#: Quantile of the calibration videos' statistics that bounds the domain from above.
DOMAIN_QUANTILE = 0.995
#: Shrinkage of the embedding covariance towards a multiple of the identity.
SHRINKAGE = 0.1
_STATS = ("distance", "motion")  # checked; "confidence" is reported only


@torch.no_grad()
def frame_embeddings(model: torch.nn.Module, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(embeddings float64 (t, D), max-softmax float64 (t,))`` of frames ``(t, 3, H, W)`` in
    [0, 1] at the model's view; D is the feature size (``frame_features``) or the class count."""
    x = frames.unsqueeze(0).to(module_device(model))
    with eval_mode(model):
        logits = model.frame_logits(x)[0].double().cpu()
        emb = model.frame_features(x)[0] if hasattr(model, "frame_features") else logits
    return emb.double().cpu().reshape(frames.shape[0], -1), logits.softmax(-1).amax(-1)


def file_embeddings(model: torch.nn.Module, path: str | Path, *, chunk_frames: int = 64):
    """:func:`frame_embeddings` of every frame of a video file, decoded as ``detect`` and ``scan``
    see it (:func:`~vidshield.data.transforms.model_view_chunks`)."""
    from vidshield.data.transforms import model_view_chunks

    embs, confs = [], []
    for _, chunk in model_view_chunks(path, model.input_spec, chunk_frames=chunk_frames):
        e, c = frame_embeddings(model, chunk)
        embs.append(e)
        confs.append(c)
    if not embs:
        raise ValueError(f"{path}: no frames decoded")
    return torch.cat(embs), torch.cat(confs)


@dataclass(frozen=True)
class DomainProfile:
    """The calibration footage as the detection network sees it (see the module docstring).

    Attributes:
        embedding: ``"frame_features"`` or ``"frame_logits"``.
        mean: ``(D,)`` mean embedding of the calibration frames.
        precision: ``(D, D)`` inverse of the shrunk covariance.
        ranges: checked statistic -> ``[0, high]``.
        videos, frames: calibration videos and frames the profile was fitted on.
    """

    embedding: str
    mean: tuple[float, ...]
    precision: tuple[tuple[float, ...], ...]
    ranges: Mapping[str, tuple[float, float]]
    videos: int
    frames: int

    def __post_init__(self):
        d = len(self.mean)
        if d < 1 or len(self.precision) != d or any(len(row) != d for row in self.precision):
            raise ValueError(f"domain profile: mean has {d} entries but precision is not {d} x {d}")
        if set(self.ranges) != set(_STATS) or any(len(r) != 2 or r[0] > r[1] for r in self.ranges.values()):
            raise ValueError(f"domain profile: ranges must give [low, high] for {', '.join(_STATS)}")
        if self.embedding not in ("frame_features", "frame_logits"):
            raise ValueError(f"domain profile: unknown embedding {self.embedding!r}")

    def distances(self, embeddings: torch.Tensor) -> np.ndarray:
        """Per-frame Mahalanobis distances ``float64 (t,)`` of embeddings ``(t, D)`` (row by row:
        a frame's distance does not depend on the frames beside it)."""
        e = embeddings.double().numpy()
        if e.ndim != 2 or e.shape[1] != len(self.mean):
            raise ValueError(f"embeddings must be (t, {len(self.mean)}); got {tuple(e.shape)}")
        diff = e - self._arrays[0]
        return np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", diff, self._arrays[1], diff), 0.0))

    @functools.cached_property
    def _arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """``(mean (D,), precision (D, D))`` as float64 arrays, made once (``scan`` asks per batch)."""
        return np.asarray(self.mean), np.asarray(self.precision)

    def statistics(self, embeddings: torch.Tensor, confidences: torch.Tensor) -> dict[str, float]:
        """The statistics of one video from its frames' embeddings ``(t, D)`` and max-softmax
        ``(t,)``: ``distance``, ``motion`` (0 for a single frame) and ``confidence``."""
        return _statistics(self.distances(embeddings), _frame_steps(embeddings), confidences.double().numpy())

    def check(self, stats: Mapping[str, float]) -> tuple[bool, list[str]]:
        """``(in_domain, reasons)``: each statistic outside its range gives one reason."""
        reasons = []
        for name in _STATS:
            lo, hi = self.ranges[name]
            if not lo <= stats[name] <= hi:
                reasons.append(f"{name} {stats[name]:.3g} outside the calibrated [{lo:.3g}, {hi:.3g}]")
        return not reasons, reasons

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": "in domain when the median per-frame Mahalanobis distance of the embedding and the median "
            "norm of its change between neighbouring frames (motion) are each <= q99.5% of the calibration "
            "videos' values",
            "embedding": self.embedding,
            "ranges": {k: list(v) for k, v in self.ranges.items()},
            "videos": self.videos,
            "frames": self.frames,
            "mean": list(self.mean),
            "precision": [list(r) for r in self.precision],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DomainProfile:
        """Inverse of :meth:`to_dict`. Raises ValueError / TypeError / KeyError on a malformed dict."""
        return cls(
            embedding=str(d["embedding"]),
            mean=tuple(float(v) for v in d["mean"]),
            precision=tuple(tuple(float(v) for v in row) for row in d["precision"]),
            ranges={k: (float(d["ranges"][k][0]), float(d["ranges"][k][1])) for k in _STATS},
            videos=int(d["videos"]),
            frames=int(d["frames"]),
        )


def fit_domain(
    videos: Iterable[tuple[torch.Tensor, torch.Tensor]],
    *,
    embedding: str = "frame_features",
    quantile: float = DOMAIN_QUANTILE,
) -> DomainProfile:
    """Fit a :class:`DomainProfile` on clean calibration videos.

    Args:
        videos: per video ``(embeddings (t, D), max-softmax (t,))`` (:func:`file_embeddings`);
            at least two videos.
        embedding: what the embeddings are (recorded).
        quantile: the quantile of the per-video statistics bounding the domain from above.
    """
    videos = list(videos)
    if len(videos) < 2:
        raise ValueError(f"the in-domain profile needs at least 2 clean videos; got {len(videos)}")
    x = np.concatenate([e.double().numpy() for e, _ in videos])
    mean = x.mean(0)
    cov = np.atleast_2d(np.cov(x, rowvar=False)) if x.shape[0] > 1 else np.zeros((x.shape[1],) * 2)
    dim = cov.shape[0]
    shrunk = (1 - SHRINKAGE) * cov + SHRINKAGE * max(float(np.trace(cov)) / dim, 1e-12) * np.eye(dim)
    precision = _round(np.linalg.inv(shrunk))  # rounded as stored, so the ranges match what is loaded
    mean = _round(mean)
    ranged = {name: (0.0, float("inf")) for name in _STATS}
    draft = DomainProfile(embedding, tuple(mean), tuple(map(tuple, precision)), ranged, len(videos), x.shape[0])
    per_video = [draft.statistics(e, c) for e, c in videos]
    ranges = {name: (0.0, float(np.quantile([s[name] for s in per_video], quantile))) for name in _STATS}
    return DomainProfile(embedding, tuple(mean), tuple(map(tuple, precision)), ranges, len(videos), x.shape[0])


def _round(a: np.ndarray) -> np.ndarray:
    """7 significant digits (the JSON stays small; a distance moves by about 1e-7 relative)."""
    return np.vectorize(lambda v: float(f"{v:.7g}"))(a)


def _frame_steps(embeddings: torch.Tensor) -> np.ndarray:
    """``||e_{t+1} - e_t||_2`` of embeddings ``(t, D)``: ``float64 (t - 1,)`` (the motion statistic's terms)."""
    return np.linalg.norm(np.diff(embeddings.double().numpy(), axis=0), axis=1)


def _statistics(distances: np.ndarray, steps: np.ndarray, confidences: np.ndarray) -> dict[str, float]:
    """The per-video statistics from the per-frame terms: medians (``motion`` 0 without steps)."""
    return {
        "distance": float(np.median(distances)),
        "motion": float(np.median(steps)) if steps.size else 0.0,
        "confidence": float(np.median(confidences)),
    }


def domain_of(model: torch.nn.Module) -> str:
    """The embedding :func:`frame_embeddings` uses for this model."""
    return "frame_features" if hasattr(model, "frame_features") else "frame_logits"


class DomainCheck:
    """The in-domain check of one video fed frame by frame, from what the detection network
    computed anyway (``scan`` runs it on its own detection pass instead of decoding the video
    again): :meth:`add` the frames' per-frame logits and CNN features in order, each frame once,
    then :meth:`result` equals :func:`check_file` on the same frames. Holds three floats per frame
    (distance, step from the previous frame, confidence) and the last frame's features."""

    def __init__(self, profile: DomainProfile):
        if profile.embedding != "frame_features":
            raise ValueError(f"a DomainCheck needs a profile on frame_features, not {profile.embedding}")
        self.profile = profile
        self._distances: list[np.ndarray] = []
        self._steps: list[np.ndarray] = []
        self._confidences: list[np.ndarray] = []
        self._last: torch.Tensor | None = None  # the previous frame's embedding (1, D)

    def add(self, frame_logits: torch.Tensor, features: torch.Tensor) -> None:
        """The next frames' per-frame logits ``(t, K)`` and CNN features ``(t, F)``."""
        e = features.reshape(features.shape[0], -1)
        if e.shape[0] == 0:
            return
        self._distances.append(self.profile.distances(e))
        self._steps.append(_frame_steps(e if self._last is None else torch.cat([self._last, e])))
        self._last = e[-1:].clone()  # not a view keeping the batch alive
        self._confidences.append(frame_logits.double().softmax(-1).amax(-1).numpy())

    def result(self) -> dict[str, Any]:
        """``{"in_domain", "statistics", "reasons"}`` over the frames added."""
        if not self._distances:
            raise ValueError("no frames decoded")
        stats = _statistics(*(np.concatenate(parts) for parts in (self._distances, self._steps, self._confidences)))
        ok, reasons = self.profile.check(stats)
        return {"in_domain": ok, "statistics": stats, "reasons": reasons}


def check_file(profile: DomainProfile, model: torch.nn.Module, path: str | Path) -> dict[str, Any]:
    """The in-domain check of one video file: ``{"in_domain", "statistics", "reasons"}``."""
    if domain_of(model) != profile.embedding:
        raise ValueError(f"the domain profile was fitted on {profile.embedding}, the model gives {domain_of(model)}")
    stats = profile.statistics(*file_embeddings(model, path))
    ok, reasons = profile.check(stats)
    return {"in_domain": ok, "statistics": stats, "reasons": reasons}

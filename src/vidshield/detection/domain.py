"""Is a video like the clean videos a detector was calibrated on? (the in-domain check)

A verdict is only as good as the thresholds, and the thresholds were measured on some clean
footage. Two statistics of a video, both from the detection network at its own view, say how far
the video is from that footage:

- ``confidence``: the median over frames of the per-frame max-softmax probability;
- ``distance``: the median over frames of the Mahalanobis distance of the frame's embedding (the
  network's ``frame_features`` when it has them, e.g. the LRCN's CNN features, else its
  per-frame logits) to the calibration frames' mean, covariance shrunk towards its mean variance
  (``(1 - s) C + s tr(C)/D I``, s = :data:`SHRINKAGE`).

Medians over frames, so a sparse attack (a few frames of a window) barely moves them.

The rule: a video is **in domain** when ``confidence`` lies in ``[q_0.5%, q_99.5%]`` of the
calibration videos' per-video values and ``distance`` is at most their ``q_99.5%`` (being close
to the calibration footage is never out of domain). The quantiles are numpy's linear
interpolation. :class:`DomainProfile` holds the mean, the precision matrix and the ranges; it is
stored in the detector config (``DetectorConfig.domain``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vidshield.utils import eval_mode, module_device

__all__ = [
    "DOMAIN_QUANTILES",
    "SHRINKAGE",
    "DomainProfile",
    "DomainCheck",
    "frame_embeddings",
    "file_embeddings",
    "fit_domain",
    "domain_of",
    "check_file",
]

#: Lower and upper quantile of the calibration videos' statistics that bound the domain.
DOMAIN_QUANTILES = (0.005, 0.995)
#: Shrinkage of the embedding covariance towards a multiple of the identity.
SHRINKAGE = 0.1
_STATS = ("confidence", "distance")


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
        ranges: statistic -> ``[low, high]`` (``distance``'s low is 0).
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
        diff = e - np.asarray(self.mean)
        return np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", diff, np.asarray(self.precision), diff), 0.0))

    def statistics(self, embeddings: torch.Tensor, confidences: torch.Tensor) -> dict[str, float]:
        """The two statistics of one video from its frames' embeddings ``(t, D)`` and max-softmax ``(t,)``."""
        dist = self.distances(embeddings)
        return {"confidence": float(np.median(confidences.double().numpy())), "distance": float(np.median(dist))}

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
            "rule": "in domain when the median per-frame max-softmax is in [q0.5%, q99.5%] and the median "
            "per-frame Mahalanobis distance of the embedding is <= q99.5% of the calibration videos' values",
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
    quantiles: Sequence[float] = DOMAIN_QUANTILES,
) -> DomainProfile:
    """Fit a :class:`DomainProfile` on clean calibration videos.

    Args:
        videos: per video ``(embeddings (t, D), max-softmax (t,))`` (:func:`file_embeddings`);
            at least two videos.
        embedding: what the embeddings are (recorded).
        quantiles: ``(low, high)`` quantiles of the per-video statistics bounding the domain.
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
    ranged = {"confidence": (0.0, 1.0), "distance": (0.0, float("inf"))}
    draft = DomainProfile(embedding, tuple(mean), tuple(map(tuple, precision)), ranged, len(videos), x.shape[0])
    per_video = [draft.statistics(e, c) for e, c in videos]
    lo_q, hi_q = quantiles
    conf = [s["confidence"] for s in per_video]
    dist = [s["distance"] for s in per_video]
    ranges = {
        "confidence": (float(np.quantile(conf, lo_q)), float(np.quantile(conf, hi_q))),
        "distance": (0.0, float(np.quantile(dist, hi_q))),
    }
    return DomainProfile(embedding, tuple(mean), tuple(map(tuple, precision)), ranges, len(videos), x.shape[0])


def _round(a: np.ndarray) -> np.ndarray:
    """7 significant digits (the JSON stays small; a distance moves by about 1e-7 relative)."""
    return np.vectorize(lambda v: float(f"{v:.7g}"))(a)


def domain_of(model: torch.nn.Module) -> str:
    """The embedding :func:`frame_embeddings` uses for this model."""
    return "frame_features" if hasattr(model, "frame_features") else "frame_logits"


class DomainCheck:
    """The in-domain check of one video fed frame by frame, from what the detection network
    computed anyway (``scan`` runs it on its own detection pass instead of decoding the video
    again): :meth:`add` the frames' per-frame logits and CNN features, each frame once, then
    :meth:`result` equals :func:`check_file` on the same frames. Holds two floats per frame."""

    def __init__(self, profile: DomainProfile):
        if profile.embedding != "frame_features":
            raise ValueError(f"a DomainCheck needs a profile on frame_features, not {profile.embedding}")
        self.profile = profile
        self._distances: list[np.ndarray] = []
        self._confidences: list[torch.Tensor] = []

    def add(self, frame_logits: torch.Tensor, features: torch.Tensor) -> None:
        """Frames' per-frame logits ``(t, K)`` and CNN features ``(t, F)``."""
        self._distances.append(self.profile.distances(features.reshape(features.shape[0], -1)))
        self._confidences.append(frame_logits.double().softmax(-1).amax(-1))

    def result(self) -> dict[str, Any]:
        """``{"in_domain", "statistics", "reasons"}`` over the frames added."""
        if not self._distances:
            raise ValueError("no frames decoded")
        stats = {
            "confidence": float(np.median(torch.cat(self._confidences).numpy())),
            "distance": float(np.median(np.concatenate(self._distances))),
        }
        ok, reasons = self.profile.check(stats)
        return {"in_domain": ok, "statistics": stats, "reasons": reasons}


def check_file(profile: DomainProfile, model: torch.nn.Module, path: str | Path) -> dict[str, Any]:
    """The in-domain check of one video file: ``{"in_domain", "statistics", "reasons"}``."""
    if domain_of(model) != profile.embedding:
        raise ValueError(f"the domain profile was fitted on {profile.embedding}, the model gives {domain_of(model)}")
    stats = profile.statistics(*file_embeddings(model, path))
    ok, reasons = profile.check(stats)
    return {"in_domain": ok, "statistics": stats, "reasons": reasons}

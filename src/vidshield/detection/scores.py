"""Consistency scores computed from the detection network's per-frame logits.

The paper routes on the exception index alpha (hard, isolated label flips). Beyond the paper
we add soft scores from the same logits, measured side by side (ROC/AUC) by
:mod:`vidshield.detection.calibration`:

- ``alpha``: Eq. 1 on the per-frame argmax labels (the paper's score).
- ``flip_rate``: fraction of neighbouring frame pairs whose labels differ, in [0, 1]. Unlike
  alpha it also counts runs of two or more flipped frames.
- ``js_divergence``: mean Jensen-Shannon divergence (base 2, so in [0, 1]) between the softmax
  outputs of neighbouring frames. Sees confidence changes that do not flip the label.
- ``consensus_deviation``: mean over frames of the total-variation distance between the frame's
  softmax and the video's mean softmax, in [0, 1). Looks at all frames at once, not only
  neighbours.

Every score maps ``frame_logits float (N, T, K)`` to ``float64 (N,)``; higher means less
consistent (more likely attacked), and a video whose frames all have the same logits scores 0
on every score.

Feature scores (:data:`FEATURE_SCORES`) read the detection network's per-frame features
``frame_features float (N, T, D)`` instead (the LRCN's CNN features, the input of its per-frame
path), for networks that have them:

- ``feature_spike``: the largest second difference over the interior frames,
  ``max_t ||f_t - (f_{t-1} + f_{t+1}) / 2||_2``. A sparse attack must move the features of the
  frames it perturbs far enough to change the classifier's answer, and its neighbours stay where
  they were; smooth motion moves features little between neighbouring frames (and motion at
  constant speed not at all in this measure). Unlike the label and softmax scores it does not
  need the per-frame network to be a good classifier: on UT-Interaction's ut-lrcn (per-frame
  path right on about half the frames) it separates the paper's sparse attack from clean windows
  where ``js_divergence`` does not (``results/real-defaults.json``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from vidshield.detection.exception import exception_index

__all__ = [
    "CONSISTENCY_SCORES",
    "FEATURE_SCORES",
    "register_score",
    "register_feature_score",
    "known_score",
    "compute_scores",
    "check_frame_logits",
]

ScoreFn = Callable[[torch.Tensor], torch.Tensor]

#: score name -> fn(frame_logits (N, T, K)) -> float64 (N,)
CONSISTENCY_SCORES: dict[str, ScoreFn] = {}


def register_score(name: str) -> Callable[[ScoreFn], ScoreFn]:
    """Decorator adding a score function to :data:`CONSISTENCY_SCORES`."""

    def deco(fn: ScoreFn) -> ScoreFn:
        if name in CONSISTENCY_SCORES:
            raise ValueError(f"consistency score {name!r} is already registered")
        CONSISTENCY_SCORES[name] = fn
        return fn

    return deco


#: feature score name -> fn(frame_features (N, T, D)) -> float64 (N,)
FEATURE_SCORES: dict[str, ScoreFn] = {}


def register_feature_score(name: str) -> Callable[[ScoreFn], ScoreFn]:
    """Decorator adding a score of per-frame features to :data:`FEATURE_SCORES`."""

    def deco(fn: ScoreFn) -> ScoreFn:
        if name in CONSISTENCY_SCORES or name in FEATURE_SCORES:
            raise ValueError(f"consistency score {name!r} is already registered")
        FEATURE_SCORES[name] = fn
        return fn

    return deco


def known_score(name: str) -> bool:
    """Whether ``name`` is a registered score (of logits or of features)."""
    return name in CONSISTENCY_SCORES or name in FEATURE_SCORES


def check_frame_logits(frame_logits: torch.Tensor) -> torch.Tensor:
    """Check per-frame logits ``float (N, T, K)`` with T >= 3 and K >= 1; returns them."""
    if not isinstance(frame_logits, torch.Tensor) or not frame_logits.is_floating_point():
        raise ValueError("frame_logits must be a float tensor (N, T, K)")
    if frame_logits.dim() != 3 or frame_logits.shape[0] == 0 or frame_logits.shape[2] == 0:
        raise ValueError(f"frame_logits must have shape (N, T, K) with N, K >= 1; got {tuple(frame_logits.shape)}")
    if frame_logits.shape[1] < 3:
        raise ValueError(f"consistency scores need at least 3 frames; got T = {frame_logits.shape[1]}")
    return frame_logits


@register_score("alpha")
def alpha_score(frame_logits: torch.Tensor) -> torch.Tensor:
    """Exception index (Eq. 1) of the argmax labels; (N, T, K) -> (N,) in [0, (T-2)/T]."""
    alpha, _ = exception_index(check_frame_logits(frame_logits).argmax(dim=-1))
    return alpha


@register_score("flip_rate")
def flip_rate(frame_logits: torch.Tensor) -> torch.Tensor:
    """Fraction of the T-1 neighbouring pairs with different argmax labels; (N,) in [0, 1]."""
    labels = check_frame_logits(frame_logits).argmax(dim=-1)
    return (labels[:, 1:] != labels[:, :-1]).to(torch.float64).mean(dim=1)


@register_score("js_divergence")
def js_divergence(frame_logits: torch.Tensor) -> torch.Tensor:
    """Mean base-2 Jensen-Shannon divergence between neighbouring frames' softmax; (N,) in [0, 1]."""
    logp = torch.log_softmax(check_frame_logits(frame_logits).to(torch.float64), dim=-1)
    a, b = logp[:, :-1], logp[:, 1:]
    logm = torch.logsumexp(torch.stack([a, b]), dim=0) - math.log(2.0)
    kl_am = (a.exp() * (a - logm)).sum(-1)
    kl_bm = (b.exp() * (b - logm)).sum(-1)
    js = 0.5 * (kl_am + kl_bm) / math.log(2.0)
    return js.clamp(0.0, 1.0).mean(dim=1)


@register_score("consensus_deviation")
def consensus_deviation(frame_logits: torch.Tensor) -> torch.Tensor:
    """Mean over frames of the total-variation distance between the frame's softmax and the
    video's mean softmax (the LRCN's video prediction averages its per-step outputs);
    (N,) in [0, 1)."""
    p = torch.softmax(check_frame_logits(frame_logits).to(torch.float64), dim=-1)
    return 0.5 * (p - p.mean(dim=1, keepdim=True)).abs().sum(dim=-1).mean(dim=1)


@register_feature_score("feature_spike")
def feature_spike(frame_features: torch.Tensor) -> torch.Tensor:
    """``max_t ||f_t - (f_{t-1} + f_{t+1}) / 2||_2`` over the interior frames; (N, T, D) -> (N,) >= 0."""
    f = check_frame_logits(frame_features).to(torch.float64)
    return (f[:, 1:-1] - (f[:, :-2] + f[:, 2:]) / 2).norm(dim=-1).amax(dim=1)


def compute_scores(
    frame_logits: torch.Tensor,
    names: list[str] | tuple[str, ...] | None = None,
    *,
    frame_features: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Every registered score (or the ``names`` given): ``(N, T, K)`` -> ``{name: float64 (N,)}``.
    The feature scores are computed from ``frame_features`` ``(N, T, D)``, by default when given."""
    if names is None:
        names = list(CONSISTENCY_SCORES) + (list(FEATURE_SCORES) if frame_features is not None else [])
    names = list(names)
    unknown = [n for n in names if not known_score(n)]
    if unknown:
        known = sorted([*CONSISTENCY_SCORES, *FEATURE_SCORES])
        raise ValueError(f"unknown consistency score(s) {unknown}; known: {known}")
    logits = check_frame_logits(frame_logits).detach()
    out = {n: CONSISTENCY_SCORES[n](logits) for n in names if n in CONSISTENCY_SCORES}
    wanted = [n for n in names if n in FEATURE_SCORES]
    if wanted:
        if frame_features is None:
            raise ValueError(f"score(s) {wanted} need the detection network's frame features")
        features = check_frame_logits(frame_features).detach()
        if tuple(features.shape[:2]) != tuple(logits.shape[:2]):
            raise ValueError(
                f"frame_features {tuple(features.shape)} and frame_logits {tuple(logits.shape)} differ in (N, T)"
            )
        out |= {n: FEATURE_SCORES[n](features) for n in wanted}
    return {n: out[n] for n in names}

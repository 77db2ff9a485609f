"""The exception index alpha (Eq. 1 of Jia, Wei, Cao 2019) and the three-way routing.

A frame is an *exception frame* when its label differs from the labels of both of its
neighbours: ``f(n-1) != f(n)`` and ``f(n+1) != f(n)``. The paper's Eq. 1 is

    alpha = (1/T) * sum_{n=2}^{T} [f(n-1) != f(n) and f(n+1) != f(n)]

with 1-based frames. As printed the sum reaches n = T, where f(T+1) does not exist. We count
the frames that have two neighbours, n = 2 .. T-1 (0-based 1 .. T-2), and divide by T as
printed. So the first and last frames are never exceptions, and alpha lies in
[0, (T-2)/T]; an alternating sequence 0101... reaches the maximum.

Two adjacent flipped frames (…0 0 1 1 0 0…) are *not* exceptions: each of them agrees with
one neighbour. Eq. 1 only sees isolated flips; the soft scores in
:mod:`vidshield.detection.scores` measure disagreement more broadly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

import torch

__all__ = ["VERDICTS", "Detection", "exception_mask", "exception_index", "route", "check_thresholds"]

#: The three verdicts, from the least to the most severe.
VERDICTS = ("clean", "sparse", "dense")


def _check_frame_labels(frame_labels) -> torch.Tensor:
    labels = torch.as_tensor(frame_labels)
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise ValueError(f"frame_labels must be integer class labels (T,) or (N, T); got dtype {labels.dtype}")
    if labels.dim() not in (1, 2):
        raise ValueError(f"frame_labels must have shape (T,) or (N, T); got shape {tuple(labels.shape)}")
    if labels.shape[-1] < 3:
        raise ValueError(
            f"the exception index needs at least 3 frames (a frame needs two neighbours); got T = {labels.shape[-1]}"
        )
    return labels


def exception_mask(frame_labels) -> torch.Tensor:
    """Boolean mask of the exception frames.

    Args:
        frame_labels: integer per-frame labels ``(T,)`` or ``(N, T)``, T >= 3 (tensor, numpy
            array or list).

    Returns:
        ``bool`` tensor of the same shape; ``True`` where frame n differs from frames n-1 and
        n+1. The first and last frames are always ``False``.

    Raises:
        ValueError: not integer, wrong rank, or T < 3.
    """
    labels = _check_frame_labels(frame_labels)
    mid = labels[..., 1:-1]
    interior = (labels[..., :-2] != mid) & (labels[..., 2:] != mid)
    mask = torch.zeros(labels.shape, dtype=torch.bool, device=labels.device)
    mask[..., 1:-1] = interior
    return mask


def exception_index(frame_labels) -> tuple[float | torch.Tensor, torch.Tensor]:
    """The exception index alpha of Eq. 1 and the mask of exception frames.

    Args:
        frame_labels: integer per-frame labels ``(T,)`` or ``(N, T)``, T >= 3.

    Returns:
        ``(alpha, mask)``. For ``(T,)`` input alpha is a Python float; for ``(N, T)`` a float64
        tensor ``(N,)``. alpha = (number of exception frames) / T, in [0, (T-2)/T]. float64 makes
        ``alpha == k / T`` exactly, so routing at a threshold such as 0.175 = 7/40 is exact.
        ``mask`` is ``bool``, same shape as the labels.

    Example:
        >>> exception_index(torch.tensor([0, 0, 1, 0, 0]))[0]
        0.2
    """
    mask = exception_mask(frame_labels)
    alpha = mask.sum(dim=-1).to(torch.float64) / mask.shape[-1]
    if mask.dim() == 1:
        return float(alpha), mask
    return alpha, mask


def check_thresholds(gamma1: float, gamma2: float) -> None:
    """Raise ``ValueError`` unless ``0 <= gamma1 <= gamma2`` are finite numbers."""
    for name, g in (("gamma1", gamma1), ("gamma2", gamma2)):
        if not isinstance(g, (int, float)) or isinstance(g, bool) or not (0.0 <= float(g) < float("inf")):
            raise ValueError(f"{name} must be a finite number >= 0, got {g!r}")
    if gamma1 > gamma2:
        raise ValueError(
            f"gamma1 must not exceed gamma2 (clean < gamma1 <= sparse < gamma2 <= dense); got {gamma1} > {gamma2}"
        )


def route(alpha: float, gamma1: float, gamma2: float) -> str:
    """Three-way routing of the paper.

    Returns ``"clean"`` when ``alpha < gamma1`` (classify directly), ``"sparse"`` when
    ``gamma1 <= alpha < gamma2`` (temporal defense), ``"dense"`` when ``alpha >= gamma2``
    (spatial defense). Requires ``0 <= gamma1 <= gamma2``.
    """
    check_thresholds(gamma1, gamma2)
    alpha = float(alpha)
    if alpha != alpha:
        raise ValueError("alpha is NaN")
    if alpha < gamma1:
        return "clean"
    if alpha < gamma2:
        return "sparse"
    return "dense"


@dataclass(frozen=True)
class Detection:
    """The detector's answer for one clip (or one window of a long video).

    Attributes:
        alpha: exception index (Eq. 1), in [0, (T-2)/T].
        verdict: ``"clean"``, ``"sparse"`` or ``"dense"``.
        frame_labels: per-frame labels of the detection network, length T.
        exception_frames: indices of the exception frames (relative to the clip; add ``start``
            for indices in the source video).
        start: index of the clip's first frame in the source video (0 for a plain clip).
        score_name: the score that was routed on (``"alpha"`` by default).
        score: its value (equals ``alpha`` when ``score_name == "alpha"``).
        scores: every consistency score of :data:`~vidshield.detection.scores.CONSISTENCY_SCORES`
            for this clip (and of :data:`~vidshield.detection.scores.FEATURE_SCORES` when the
            detection network gives per-frame features), name -> value.
    """

    alpha: float
    verdict: str
    frame_labels: tuple[int, ...]
    exception_frames: tuple[int, ...]
    start: int = 0
    score_name: str = "alpha"
    score: float | None = None
    scores: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")
        object.__setattr__(self, "frame_labels", tuple(int(v) for v in self.frame_labels))
        object.__setattr__(self, "exception_frames", tuple(int(v) for v in self.exception_frames))
        object.__setattr__(self, "alpha", float(self.alpha))
        object.__setattr__(self, "score", float(self.alpha if self.score is None else self.score))
        object.__setattr__(self, "scores", {k: float(v) for k, v in dict(self.scores).items()})

    @property
    def num_frames(self) -> int:
        return len(self.frame_labels)

    def to_dict(self) -> dict:
        """A JSON-ready dict (lists instead of tuples)."""
        d = asdict(self)
        d["frame_labels"] = list(self.frame_labels)
        d["exception_frames"] = list(self.exception_frames)
        return d

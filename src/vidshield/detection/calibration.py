"""Threshold selection as in the paper's Tables 1 and 2, plus ROC curves and AUCs.

- Table 1 (gamma1): clean videos (negative) vs sparse + dense videos (adversarial, positive),
  gamma1 swept over 0.075 .. 0.25 step 0.025.
- Table 2 (gamma2): sparse videos (negative) vs dense videos (positive), gamma2 swept over
  0.25 .. 0.425 step 0.025.

A video is predicted positive when ``score >= threshold``, the same comparison the router
uses (:func:`~vidshield.detection.exception.route`). The pick is the threshold with the highest
F1; ties go to the *smallest* threshold (the more sensitive detector: a clean video sent to a
defense costs less than an attack that goes undefended). Precision with no predicted
positive is 0 (scikit-learn's ``zero_division=0``).

Grid values are built as ``round(start + i * step, 10)`` so that 0.125 is the double nearest to
1/8 and alphas k/T compare exactly with them.

A false-alarm budget instead of F1 (``vidshield calibrate --target-fpr``; beyond the paper):

- **Window threshold** (:func:`fpr_threshold`): with the n clean calibration window scores sorted,
  ``s_(1) <= ... <= s_(n)``, take ``k = ceil((n + 1) * (1 - fpr))`` and flag a window when its
  score is *strictly above* ``s_(k)`` (gamma1 is the smallest double above ``s_(k)``, so the
  router's ``score >= gamma1`` means ``score > s_(k)``). This is the split-conformal quantile: for
  a new clean window exchangeable with the calibration windows, ``P(score > s_(k)) <= 1 - k / (n + 1)
  <= fpr``, ties included. It needs ``k <= n``, i.e. ``n >= (1 - fpr) / fpr`` clean windows (99
  for 1 %); fewer is an error.
- **Video rule** (:func:`windows_allowed`): a video of n windows is flagged only when the number
  of windows that fire, k, is improbable for a clean video: ``P(X >= k) <= level`` for
  ``X ~ Binomial(n, fpr)`` (level defaults to fpr). So ``windows_allowed(n)`` windows may fire
  on a clean video of that length without a verdict; one window of a one-window clip is enough.
  Overlapping windows are correlated, so the binomial tail is an approximation there.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from fractions import Fraction

import numpy as np

from vidshield.detection.exception import check_thresholds

__all__ = [
    "GAMMA1_GRID",
    "GAMMA2_GRID",
    "SweepRow",
    "RocCurve",
    "TaskResult",
    "CalibrationResult",
    "threshold_grid",
    "data_grid",
    "sweep",
    "pick_best",
    "roc",
    "calibrate",
    "compare_scores",
    "calibrate_all",
    "TASKS",
    "sweep_markdown",
    "sweep_rich_table",
    "FprThreshold",
    "min_clean_windows",
    "conformal_rank",
    "fpr_threshold",
    "binomial_tails",
    "binomial_tail",
    "windows_allowed",
    "video_flagged",
    "split_videos",
    "calibrate_fpr",
    "calibrate_fpr_groups",
]


def threshold_grid(start: float, stop: float, step: float) -> tuple[float, ...]:
    """Thresholds ``start, start + step, ..., stop`` (inclusive), each rounded to 10 decimals."""
    if step <= 0 or stop < start:
        raise ValueError(f"need step > 0 and stop >= start; got start={start}, stop={stop}, step={step}")
    n = int(round((stop - start) / step)) + 1
    return tuple(round(start + i * step, 10) for i in range(n))


#: The paper's sweeps (Tables 1 and 2).
GAMMA1_GRID = threshold_grid(0.075, 0.25, 0.025)
GAMMA2_GRID = threshold_grid(0.25, 0.425, 0.025)


def data_grid(scores) -> tuple[float, ...]:
    """Every distinct score value, ascending: thresholding at them realises every possible split
    of the data (for scores without a paper grid)."""
    return tuple(float(v) for v in np.unique(np.asarray(scores, dtype=np.float64)))


@dataclass(frozen=True)
class SweepRow:
    """One row of a threshold sweep (precision, recall, F1 in [0, 1])."""

    threshold: float
    precision: float
    recall: float
    f1: float
    tp: int
    fp: int
    fn: int
    tn: int


def _as_scores(scores, positive) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    p = np.asarray(positive).reshape(-1)
    if p.dtype != np.bool_:
        raise ValueError(f"positive must be a bool array, got dtype {p.dtype}")
    if s.shape != p.shape:
        raise ValueError(f"scores and positive must have the same length; got {s.shape[0]} and {p.shape[0]}")
    if s.size == 0:
        raise ValueError("need at least one score")
    if not np.isfinite(s).all():
        raise ValueError("scores must be finite")
    return s, p


def sweep(scores, positive, thresholds: Sequence[float]) -> list[SweepRow]:
    """Precision / recall / F1 at each threshold.

    Args:
        scores: ``(M,)`` detection scores (e.g. alpha), higher = more likely positive.
        positive: ``bool (M,)`` ground truth.
        thresholds: values to try; a video is predicted positive when ``score >= threshold``.

    Returns:
        one :class:`SweepRow` per threshold, in the order given.
    """
    s, p = _as_scores(scores, positive)
    rows = []
    for t in thresholds:
        pred = s >= float(t)
        tp = int((pred & p).sum())
        fp = int((pred & ~p).sum())
        fn = int((~pred & p).sum())
        tn = int((~pred & ~p).sum())
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        rows.append(SweepRow(float(t), precision, recall, f1, tp, fp, fn, tn))
    return rows


def pick_best(rows: Sequence[SweepRow]) -> SweepRow:
    """The row with the highest F1; ties -> the smallest threshold."""
    if not rows:
        raise ValueError("pick_best needs at least one row")
    return min(rows, key=lambda r: (-r.f1, r.threshold))


@dataclass(frozen=True)
class RocCurve:
    """ROC curve (scikit-learn ``roc_curve``) and its area (``roc_auc_score``)."""

    fpr: tuple[float, ...]
    tpr: tuple[float, ...]
    thresholds: tuple[float, ...]
    auc: float

    def to_dict(self) -> dict:
        # sklearn's first threshold is +inf, which JSON cannot hold.
        return {
            "auc": self.auc,
            "fpr": list(self.fpr),
            "tpr": list(self.tpr),
            "thresholds": [t if np.isfinite(t) else None for t in self.thresholds],
        }


def roc(negative_scores, positive_scores) -> RocCurve:
    """ROC of separating ``positive_scores`` (label 1) from ``negative_scores`` (label 0)."""
    from sklearn.metrics import roc_auc_score, roc_curve

    neg = np.asarray(negative_scores, dtype=np.float64).reshape(-1)
    pos = np.asarray(positive_scores, dtype=np.float64).reshape(-1)
    if neg.size == 0 or pos.size == 0:
        raise ValueError(f"ROC needs both classes; got {neg.size} negative and {pos.size} positive scores")
    y = np.concatenate([np.zeros(neg.size, dtype=int), np.ones(pos.size, dtype=int)])
    s = np.concatenate([neg, pos])
    fpr, tpr, thr = roc_curve(y, s)
    return RocCurve(tuple(map(float, fpr)), tuple(map(float, tpr)), tuple(map(float, thr)), float(roc_auc_score(y, s)))


@dataclass(frozen=True)
class TaskResult:
    """One calibration task: the sweep, the picked row and the ROC."""

    name: str
    negative: str
    positive: str
    rows: tuple[SweepRow, ...]
    best: SweepRow
    roc: RocCurve

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "negative": self.negative,
            "positive": self.positive,
            "rows": [asdict(r) for r in self.rows],
            "best": asdict(self.best),
            "roc": self.roc.to_dict(),
        }


@dataclass(frozen=True)
class CalibrationResult:
    """Both tasks and the picked thresholds (``gamma1 <= gamma2``)."""

    score: str
    gamma1: float
    gamma2: float
    table1: TaskResult
    table2: TaskResult
    counts: Mapping[str, int]

    def to_dict(self) -> dict:
        return {
            "score": self.score,
            "gamma1": self.gamma1,
            "gamma2": self.gamma2,
            "counts": dict(self.counts),
            "table1": self.table1.to_dict(),
            "table2": self.table2.to_dict(),
        }


def _task(name, neg_name, pos_name, neg, pos, grid) -> TaskResult:
    scores = np.concatenate([neg, pos])
    positive = np.concatenate([np.zeros(neg.size, dtype=bool), np.ones(pos.size, dtype=bool)])
    rows = tuple(sweep(scores, positive, grid))
    return TaskResult(name, neg_name, pos_name, rows, pick_best(rows), roc(neg, pos))


def calibrate(
    clean_scores,
    sparse_scores,
    dense_scores,
    *,
    gamma1_grid: Sequence[float] | None = None,
    gamma2_grid: Sequence[float] | None = None,
    score: str = "alpha",
) -> CalibrationResult:
    """Pick gamma1 and gamma2 by maximum F1 as in the paper.

    Args:
        clean_scores, sparse_scores, dense_scores: ``(M_c,)``, ``(M_s,)``, ``(M_d,)`` scores of
            each video type (each non-empty).
        gamma1_grid: thresholds for Table 1 (default :data:`GAMMA1_GRID`, 0.075 .. 0.25).
        gamma2_grid: thresholds for Table 2 (default :data:`GAMMA2_GRID`, 0.25 .. 0.425).
        score: name of the score (recorded only).

    Returns:
        :class:`CalibrationResult`.

    Raises:
        ValueError: an empty group, or the picks give gamma1 > gamma2 (overlapping grids).
    """
    clean, sparse, dense = (
        np.asarray(x, dtype=np.float64).reshape(-1) for x in (clean_scores, sparse_scores, dense_scores)
    )
    for name, arr in (("clean", clean), ("sparse", sparse), ("dense", dense)):
        if arr.size == 0:
            raise ValueError(f"calibration needs at least one {name} video")
    t1 = _task(
        "clean vs adversarial",
        "clean",
        "sparse+dense",
        clean,
        np.concatenate([sparse, dense]),
        GAMMA1_GRID if gamma1_grid is None else gamma1_grid,
    )
    t2 = _task("sparse vs dense", "sparse", "dense", sparse, dense, GAMMA2_GRID if gamma2_grid is None else gamma2_grid)
    try:
        check_thresholds(t1.best.threshold, t2.best.threshold)
    except ValueError as e:
        raise ValueError(f"calibration picked inconsistent thresholds: {e}; use grids that do not overlap") from e
    return CalibrationResult(
        score,
        t1.best.threshold,
        t2.best.threshold,
        t1,
        t2,
        {"clean": int(clean.size), "sparse": int(sparse.size), "dense": int(dense.size)},
    )


def compare_scores(per_score: Mapping[str, tuple]) -> dict[str, dict[str, float]]:
    """AUC of every score on both tasks.

    Args:
        per_score: score name -> ``(clean, sparse, dense)`` score arrays.

    Returns:
        name -> ``{"clean_vs_adversarial": auc, "sparse_vs_dense": auc}``.
    """
    out = {}
    for name, (clean, sparse, dense) in per_score.items():
        adv = np.concatenate([np.asarray(sparse, dtype=np.float64), np.asarray(dense, dtype=np.float64)])
        out[name] = {"clean_vs_adversarial": roc(clean, adv).auc, "sparse_vs_dense": roc(sparse, dense).auc}
    return out


#: The two calibration tasks, by the names used in results and figures.
TASKS = ("clean vs adversarial", "sparse vs dense")


def calibrate_all(
    groups: Mapping[str, Mapping[str, Sequence[float]]],
    *,
    score: str = "alpha",
    gamma1_grid: Sequence[float] | None = None,
    gamma2_grid: Sequence[float] | None = None,
):
    """Calibrate on one score and measure every score side by side.

    Args:
        groups: ``{"clean": {score name: values}, "sparse": {...}, "dense": {...}}``; every
            group has the same score names, ``score`` among them.
        score: the score to pick thresholds on.
        gamma1_grid, gamma2_grid: sweeps; default the paper's grids for ``alpha`` and every
            observed value (:func:`data_grid`) for other scores, whose scales differ.

    Returns:
        ``(result, aucs, curves)``: :class:`CalibrationResult` for ``score``; ``aucs[name]`` =
        ``{"clean_vs_adversarial": auc, "sparse_vs_dense": auc}``; ``curves[task][name]`` =
        :class:`RocCurve` for the tasks in :data:`TASKS`.
    """
    missing = [g for g in ("clean", "sparse", "dense") if g not in groups]
    if missing:
        raise ValueError(f"groups needs clean, sparse and dense; missing {missing}")
    names = list(groups["clean"])
    if score not in names:
        raise ValueError(f"score {score!r} not among the computed scores {names}")
    values = {g: {n: np.asarray(groups[g][n], dtype=np.float64) for n in names} for g in ("clean", "sparse", "dense")}
    if score != "alpha":
        if gamma1_grid is None:
            gamma1_grid = data_grid(np.concatenate([values[g][score] for g in values]))
        if gamma2_grid is None:
            gamma2_grid = data_grid(np.concatenate([values["sparse"][score], values["dense"][score]]))
    result = calibrate(
        values["clean"][score],
        values["sparse"][score],
        values["dense"][score],
        gamma1_grid=gamma1_grid,
        gamma2_grid=gamma2_grid,
        score=score,
    )
    curves: dict[str, dict[str, RocCurve]] = {t: {} for t in TASKS}
    aucs = {}
    for n in names:
        adv = np.concatenate([values["sparse"][n], values["dense"][n]])
        curves[TASKS[0]][n] = roc(values["clean"][n], adv)
        curves[TASKS[1]][n] = roc(values["sparse"][n], values["dense"][n])
        aucs[n] = {"clean_vs_adversarial": curves[TASKS[0]][n].auc, "sparse_vs_dense": curves[TASKS[1]][n].auc}
    return result, aucs, curves


def _fmt_row(r: SweepRow, best: SweepRow | None) -> list[str]:
    mark = " *" if best is not None and r == best else ""
    return [f"{r.threshold:.3f}{mark}", f"{100 * r.precision:.1f}%", f"{100 * r.recall:.1f}%", f"{100 * r.f1:.1f}%"]


def sweep_markdown(
    rows: Sequence[SweepRow], *, title: str, best: SweepRow | None = None, symbol: str = "threshold"
) -> str:
    """The sweep in the paper's layout (rows: threshold; columns: precision, recall, F1) as
    Markdown; the picked row is marked with ``*``."""
    lines = [f"**{title}**", "", f"| {symbol} | precision | recall | F1 |", "|---:|---:|---:|---:|"]
    lines += ["| " + " | ".join(_fmt_row(r, best)) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def sweep_rich_table(rows: Sequence[SweepRow], *, title: str, best: SweepRow | None = None, symbol: str = "threshold"):
    """The same table as a :class:`rich.table.Table`."""
    from rich.table import Table

    table = Table(title=title)
    for col in (symbol, "precision", "recall", "F1"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(*_fmt_row(r, best), style="bold green" if best is not None and r == best else None)
    return table


# -- false-alarm budget ----------------------------------------------------------------------


def _check_fpr(target_fpr: float) -> Fraction:
    if isinstance(target_fpr, bool) or not isinstance(target_fpr, (int, float)) or not 0 < target_fpr < 1:
        raise ValueError(f"target FPR must be a number in (0, 1); got {target_fpr!r}")
    return Fraction(repr(float(target_fpr)))  # the decimal the user wrote, exactly


def min_clean_windows(target_fpr: float) -> int:
    """Fewest clean windows for which :func:`conformal_rank` exists: ``ceil((1 - fpr) / fpr)``."""
    f = _check_fpr(target_fpr)
    return math.ceil((1 - f) / f)


def conformal_rank(n: int, target_fpr: float) -> int:
    """``k = ceil((n + 1) * (1 - fpr))``, computed exactly (the fpr as the decimal written).

    Raises:
        ValueError: ``k > n`` (too few clean windows for this fpr; the message says how many).
    """
    f = _check_fpr(target_fpr)
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"need at least one clean window; got {n!r}")
    k = math.ceil((n + 1) * (1 - f))
    if k > n:
        raise ValueError(
            f"{n} clean window(s) are too few for a false-alarm rate of {target_fpr:g}: the finite-sample "
            f"quantile needs at least {min_clean_windows(target_fpr)} (ceil((1 - fpr) / fpr)); add clean videos "
            "or ask for a larger --target-fpr"
        )
    return k


@dataclass(frozen=True)
class FprThreshold:
    """A window threshold from clean scores (see the module docstring).

    Attributes:
        threshold: gamma1: a window fires when ``score >= threshold`` (= ``score > score_at_rank``).
        score_at_rank: ``s_(k)``, the k-th smallest clean score.
        rank: k = ``ceil((n + 1) * (1 - target_fpr))``.
        n: clean windows used.
        target_fpr: the budget asked for.
        calibration_fpr: share of the n calibration windows that fire (<= target_fpr).
    """

    threshold: float
    score_at_rank: float
    rank: int
    n: int
    target_fpr: float
    calibration_fpr: float

    def to_dict(self) -> dict:
        return asdict(self)


def fpr_threshold(clean_scores, target_fpr: float) -> FprThreshold:
    """The conformal threshold for ``target_fpr`` from clean window scores ``(n,)`` (finite)."""
    s = np.sort(np.asarray(clean_scores, dtype=np.float64).reshape(-1))
    if s.size and not np.isfinite(s).all():
        raise ValueError("clean scores must be finite")
    k = conformal_rank(int(s.size), target_fpr)
    at_rank = float(s[k - 1])
    threshold = float(np.nextafter(at_rank, np.inf))
    fired = int((s >= threshold).sum())
    return FprThreshold(threshold, at_rank, k, int(s.size), float(target_fpr), fired / s.size)


def binomial_tails(n: int, p: float) -> np.ndarray:
    """``P(X >= j)`` for ``j = 0 .. n + 1``, ``X ~ Binomial(n, p)``: ``float64 (n + 2,)``.

    Each probability ``C(n, i) p^i (1 - p)^(n - i)`` is computed in log space (``log C(n, i)`` as a
    running sum of ``log((n - i + 1) / i)``) and the tails are summed from the top, so a small tail
    keeps its relative precision (within 1e-11 of scipy's ``binom.sf`` up to n = 10,000). numpy
    only: ``scan`` applies the video rule to every video, and importing ``scipy.stats`` for it took
    0.6 s of CPU."""
    if not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be an int >= 0; got {n!r}")
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must lie in [0, 1]; got {p!r}")
    tails = np.zeros(n + 2)
    if p in (0.0, 1.0):  # all the mass on X = 0 or X = n
        tails[: (n if p == 1.0 else 0) + 1] = 1.0
        return tails
    i = np.arange(1, n + 1, dtype=np.float64)
    log_comb = np.concatenate(([0.0], np.cumsum(np.log(n - i + 1) - np.log(i))))
    k = np.arange(n + 1, dtype=np.float64)
    pmf = np.exp(log_comb + k * math.log(p) + (n - k) * math.log1p(-p))
    tails[: n + 1] = np.cumsum(pmf[::-1])[::-1]
    return tails


def binomial_tail(k: int, n: int, p: float) -> float:
    """``P(X >= k)`` for ``X ~ Binomial(n, p)`` (1 for k <= 0, 0 for k > n; :func:`binomial_tails`)."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    return float(binomial_tails(n, p)[k])


def windows_allowed(n: int, fpr: float, level: float | None = None) -> int:
    """Windows that may fire on a clean video of ``n`` windows without flagging it: the largest
    ``a`` with ``P(X >= a + 1) > level``, X ~ Binomial(n, fpr) (level default fpr; compared with
    a relative tolerance of 1e-9, so ``n = 1`` allows 0). ``n >= 1``."""
    _check_fpr(fpr)
    level = float(fpr if level is None else level)
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1); got {level!r}")
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"a video has at least one window; got n = {n!r}")
    tails = binomial_tails(n, float(fpr))[1 : n + 1]  # tails[j] = P(X >= j + 1)
    below = np.nonzero(tails <= level * (1 + 1e-9))[0]
    return int(below[0]) if below.size else n


def video_flagged(fired: int, n: int, fpr: float, level: float | None = None) -> bool:
    """True when ``fired`` of ``n`` windows exceed :func:`windows_allowed` (the video rule)."""
    if not 0 <= fired <= n:
        raise ValueError(f"fired windows must be in 0 .. {n}; got {fired}")
    return fired > windows_allowed(n, fpr, level)


def split_videos(names: Sequence[str], holdout_fraction: float, *, seed: int = 0) -> tuple[list[str], list[str]]:
    """Split clean videos into ``(calibration, held_out)``: ``round(fraction * n)`` videos held out
    (at least one when the fraction is > 0 and n >= 2), chosen by a seeded permutation of the
    sorted names. Windows of one video stay on one side."""
    if not 0 <= holdout_fraction < 1:
        raise ValueError(f"holdout fraction must be in [0, 1); got {holdout_fraction}")
    names = sorted(names)
    m = round(holdout_fraction * len(names))
    if holdout_fraction > 0 and m == 0 and len(names) >= 2:
        m = 1
    order = np.random.default_rng(seed).permutation(len(names))
    held = sorted(names[i] for i in order[:m])
    return [n for n in names if n not in set(held)], held


def calibrate_fpr(
    clean_windows: Mapping[str, Sequence[float]], target_fpr: float, *, holdout_fraction: float = 0.25, seed: int = 0
) -> dict:
    """gamma1 for a false-alarm budget from clean videos' window scores, checked on held-out videos.

    Args:
        clean_windows: clean video name -> its window scores (higher = less consistent).
        target_fpr: the per-window false-alarm rate asked for, in (0, 1).
        holdout_fraction: share of the videos kept out of calibration (:func:`split_videos`) to
            measure the achieved rate.
        seed: the split's seed.

    Returns:
        JSON-ready: ``threshold`` (:class:`FprThreshold` as a dict), the calibration and held-out
        video names and window counts, ``heldout_window_fpr`` (share of held-out clean windows
        that fire; None without held-out videos) and ``heldout_videos_flagged`` (held-out clean
        videos flagged by the video rule).

    Raises:
        ValueError: too few clean windows in the calibration part (the message says how many).
    """
    cal, held = split_videos(list(clean_windows), holdout_fraction, seed=seed)
    cal_scores = [float(v) for name in cal for v in clean_windows[name]]
    try:
        thr = fpr_threshold(cal_scores, target_fpr)
    except ValueError as e:
        raise ValueError(
            f"{e} (calibration part: {len(cal_scores)} windows of {len(cal)} clean videos; {len(held)} more held out)"
        ) from e
    held_scores = [float(v) for name in held for v in clean_windows[name]]
    flagged = [
        name
        for name in held
        if video_flagged(
            sum(float(v) >= thr.threshold for v in clean_windows[name]), len(clean_windows[name]), target_fpr
        )
    ]
    return {
        "method": "split-conformal quantile: gamma1 = next double above s_(k), k = ceil((n + 1)(1 - fpr))",
        "target_fpr": float(target_fpr),
        "threshold": thr.to_dict(),
        "holdout_fraction": holdout_fraction,
        "seed": seed,
        "calibration_videos": cal,
        "heldout_videos": held,
        "calibration_windows": len(cal_scores),
        "heldout_windows": len(held_scores),
        "heldout_window_fpr": (sum(v >= thr.threshold for v in held_scores) / len(held_scores))
        if held_scores
        else None,
        "heldout_videos_flagged": flagged,
    }


def calibrate_fpr_groups(
    groups: Mapping[str, Mapping[str, Sequence[float]]],
    target_fpr: float,
    *,
    holdout_fraction: float = 0.25,
    seed: int = 0,
) -> dict:
    """:func:`calibrate_fpr` on the ``clean`` group, and every other group's detection rate under
    the video rule (:func:`video_flagged`) at the threshold found.

    Args:
        groups: group name (``clean``, ``sparse``, ``dense``, hold-out attacks) -> video name ->
            its window scores (each video at least one window).

    Returns:
        :func:`calibrate_fpr`'s dict plus ``gamma1`` (the threshold) and ``detected``: group ->
        ``{"videos": count, "flagged": share of its videos flagged}`` for the other groups.

    Raises:
        ValueError: no clean video, a video without windows, or too few clean windows.
    """
    if not groups.get("clean"):
        raise ValueError("a false-alarm budget needs at least one clean video")
    for group, videos in groups.items():
        for name, scores in videos.items():
            if len(scores) == 0:
                raise ValueError(f"{group} video {name} has no window scores")
    fpr = calibrate_fpr(groups["clean"], target_fpr, holdout_fraction=holdout_fraction, seed=seed)
    fpr["gamma1"] = fpr["threshold"]["threshold"]
    for group in sorted(set(groups) - {"clean"}):
        videos = groups[group]
        if videos:
            flagged = [
                video_flagged(sum(float(v) >= fpr["gamma1"] for v in scores), len(scores), target_fpr)
                for scores in videos.values()
            ]
            fpr.setdefault("detected", {})[group] = {"videos": len(videos), "flagged": sum(flagged) / len(videos)}
    return fpr

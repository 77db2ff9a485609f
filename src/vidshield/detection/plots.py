"""The paper's detection figures as small PNGs (matplotlib's Agg canvas; no pyplot state).

- Figure 2: distributions of a score (alpha) for clean, sparse and dense videos.
- Figure 3: per-frame labels of clean vs attacked videos, exception frames marked.
- Figure 4: ROC curves of both tasks, one curve per score, AUC in the legend.

Titles, labels and class names are drawn as plain text (no mathtext: a ``$`` in a file name is a
dollar sign), made printable first (:func:`vidshield.text.printable`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from vidshield.detection.calibration import RocCurve
from vidshield.detection.exception import exception_mask
from vidshield.plotting import PLAIN as _PLAIN
from vidshield.plotting import new_figure, save_figure
from vidshield.text import printable

__all__ = ["plot_score_distributions", "plot_label_strips", "plot_roc_curves"]

_COLOURS = {"clean": "tab:green", "sparse": "tab:orange", "dense": "tab:red"}


def plot_score_distributions(
    groups: Mapping[str, Sequence[float]],
    path: str | Path,
    *,
    score_name: str = "alpha",
    gamma1: float | None = None,
    gamma2: float | None = None,
    bins: int = 20,
    dpi: int = 120,
) -> Path:
    """Figure 2: one histogram per video type (normalised to fractions of that type),
    with the thresholds as dashed lines.

    Args:
        groups: video type (``clean``/``sparse``/``dense``/...) -> scores.
        path: PNG to write.
    """
    if not groups or any(len(v) == 0 for v in groups.values()):
        raise ValueError("every group needs at least one score")
    values = np.concatenate([np.asarray(v, dtype=np.float64) for v in groups.values()])
    hi = max(float(values.max()), gamma2 or 0.0, 1e-3)
    edges = np.linspace(0.0, hi * 1.05, bins + 1)
    fig = new_figure(6.0, 3.6)
    ax = fig.add_subplot()
    for name, v in groups.items():
        v = np.asarray(v, dtype=np.float64)
        ax.hist(
            v,
            bins=edges,
            weights=np.full(v.size, 1.0 / v.size),
            histtype="step",
            linewidth=1.8,
            color=_COLOURS.get(name),
            label=f"{name} (n={v.size}, mean={v.mean():.3f})",
        )
    for g, label, style in ((gamma1, "gamma1", "--"), (gamma2, "gamma2", ":")):
        if g is not None:
            ax.axvline(g, color="k", linestyle=style, linewidth=1.2, label=f"{label} = {g:.3g}")
    ax.set_xlabel(printable(score_name), **_PLAIN)
    ax.set_ylabel("fraction of videos")
    ax.set_title(printable(f"Distribution of {score_name} per video type"), **_PLAIN)
    ax.legend(fontsize=8)
    return save_figure(fig, path, dpi)


def plot_label_strips(
    strips: Sequence[tuple[str, Sequence[int]]],
    path: str | Path,
    *,
    class_names: Sequence[str] | None = None,
    dpi: int = 120,
) -> Path:
    """Figure 3: per-frame labels over time, one row per video; exception frames (Eq. 1) are
    circled in red.

    Args:
        strips: ``(title, frame_labels)`` per row, each with at least 3 frames.
        class_names: optional names for the label axis.
    """
    if not strips:
        raise ValueError("plot_label_strips needs at least one strip")
    fig = new_figure(7.0, 1.4 * len(strips) + 0.4)
    axes = fig.subplots(len(strips), 1, squeeze=False)[:, 0]
    for ax, (title, labels) in zip(axes, strips):
        labels = np.asarray(labels, dtype=np.int64)
        mask = exception_mask(labels).numpy()
        t = np.arange(labels.size)
        ax.step(t, labels, where="mid", color="tab:blue", linewidth=1.2)
        ax.scatter(t, labels, s=10, color="tab:blue", zorder=3)
        if mask.any():
            ax.scatter(
                t[mask],
                labels[mask],
                s=60,
                facecolors="none",
                edgecolors="red",
                linewidths=1.5,
                zorder=4,
                label="exception frame",
            )
            ax.legend(fontsize=7, loc="upper right")
        alpha = mask.sum() / labels.size
        ax.set_title(printable(f"{title}   (alpha = {alpha:.3f})"), fontsize=9, **_PLAIN)
        shown = np.unique(labels)
        ax.set_yticks(shown)
        if class_names is not None:
            names = [printable(class_names[i]) if 0 <= i < len(class_names) else str(i) for i in shown]
            ax.set_yticklabels(names, fontsize=7, **_PLAIN)
        ax.set_ylim(shown.min() - 0.7, shown.max() + 0.7)
        ax.set_ylabel("label", fontsize=8)
    axes[-1].set_xlabel("frame")
    fig.tight_layout()
    return save_figure(fig, path, dpi)


def plot_roc_curves(tasks: Mapping[str, Mapping[str, RocCurve]], path: str | Path, *, dpi: int = 120) -> Path:
    """Figure 4: one panel per task (e.g. ``clean vs adversarial``, ``sparse vs dense``), one
    curve per score, AUC in the legend."""
    if not tasks:
        raise ValueError("plot_roc_curves needs at least one task")
    fig = new_figure(4.2 * len(tasks), 4.0)
    axes = fig.subplots(1, len(tasks), squeeze=False)[0]
    for ax, (task, curves) in zip(axes, tasks.items()):
        for name, c in curves.items():
            ax.plot(c.fpr, c.tpr, linewidth=1.6, label=f"{name} (AUC {c.auc:.3f})")
        ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.01)
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        ax.set_title(printable(task), fontsize=10, **_PLAIN)
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return save_figure(fig, path, dpi)

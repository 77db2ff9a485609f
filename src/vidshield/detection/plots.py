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

__all__ = ["plot_score_distributions", "plot_label_strips", "plot_roc_curves", "scan_timeline", "plot_scan_timeline"]

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


def scan_timeline(report: dict) -> dict:
    """What the scan picture shows, taken from a scan report's numbers only (so a test can check
    the picture against the report): per window its frame span, routing score and verdict, the
    fired windows (verdict not clean) to shade, the thresholds, the per-frame labels (a later
    window's labels win where windows overlap, as in :meth:`vidshield.pipeline.ScanResult.frame_labels`),
    the exception frames and the title (verdict and in-domain check).

    Returns:
        ``dict(windows=[(start, end, score, verdict)], fired=[(start, end)], gamma1, gamma2,
        score_name, labels (list, one per frame), exception_frames, title, frames)``; ``end``
        is exclusive.
    """
    frames = int(report["num_frames"])
    labels = [0] * frames
    windows = []
    for w in report["windows"]:
        start, end = int(w["start"]), int(w["start"]) + len(w["frame_labels"])
        labels[start:end] = w["frame_labels"]
        windows.append((start, end, float(w.get("score", w["alpha"])), w["verdict"]))
    verdict = report["verdict"]
    if verdict == "out_of_domain":
        head = f"OUT OF DOMAIN (no verdict; the detector alone: {report['detector_verdict']})"
    else:
        head = verdict.upper()
    domain = {None: "in-domain check: none", True: "in domain", False: "out of domain"}[report.get("in_domain")]
    truncated = ", truncated file" if report.get("truncated") else ""
    return {
        "windows": windows,
        "fired": [(s, e) for s, e, _, v in windows if v != "clean"],
        "gamma1": float(report["gamma1"]),
        "gamma2": float(report["gamma2"]),
        "score_name": report.get("score_name", "alpha"),
        "labels": labels,
        "exception_frames": list(report["exception_frames"]),
        "frames": frames,
        "title": f"{Path(report['video']).name}: {head}   ({domain}, {frames} frames{truncated})",
    }


def plot_scan_timeline(
    report: dict,
    path: str | Path,
    *,
    thumbnails: Mapping[int, np.ndarray] | None = None,
    class_names: Sequence[str] | None = None,
    dpi: int = 110,
) -> Path:
    """The scan picture: frame thumbnails along the time axis (top), each window's routing score
    against gamma1 / gamma2 with the fired windows shaded (middle), the per-frame labels with the
    exception frames circled (bottom), the verdict and the in-domain check in the title; all from
    :func:`scan_timeline` of ``report``.

    Args:
        thumbnails: frame index -> uint8 ``(h, w, 3)`` image, drawn at its frame.
        class_names: names for the label axis (default: the report's ``label_space``).
    """
    spec = scan_timeline(report)
    names = class_names if class_names is not None else report.get("label_space")
    n = max(spec["frames"], 1)
    rows = [1.1, 1.3, 1.5] if thumbnails else [1.3, 1.5]
    fig = new_figure(9.0, sum(rows) + 0.7)
    axes = fig.subplots(len(rows), 1, sharex=True, gridspec_kw={"height_ratios": rows})
    if thumbnails:
        ax = axes[0]
        width = n / max(len(thumbnails), 1) * 0.92
        for t, image in sorted(thumbnails.items()):
            h, w = image.shape[:2]
            ax.imshow(image, extent=(t - width / 2 + 0.5, t + width / 2 + 0.5, 0, width * h / w), aspect="auto")
        ax.set_ylim(0, width * max(im.shape[0] / im.shape[1] for im in thumbnails.values()))
        ax.set_yticks([])
        ax.set_ylabel("frames", fontsize=8, **_PLAIN)
    score_ax, label_ax = axes[-2], axes[-1]
    for s, e in spec["fired"]:
        for ax in (score_ax, label_ax):
            ax.axvspan(s, e, color="tab:red", alpha=0.15, lw=0)
    for s, e, score, verdict in spec["windows"]:
        score_ax.plot([s, e], [score, score], color=_COLOURS.get(verdict, "tab:blue"), lw=2)
    top = 1.35 * max([spec["gamma1"], *(w[2] for w in spec["windows"])]) or 1.0
    score_ax.axhline(spec["gamma1"], color="tab:orange", ls="--", lw=1, label=f"gamma1 {spec['gamma1']:.3g} (sparse)")
    if spec["gamma2"] <= top:
        score_ax.axhline(spec["gamma2"], color="tab:red", ls=":", lw=1, label=f"gamma2 {spec['gamma2']:.3g} (dense)")
    else:  # a dense threshold far above every score (e.g. routing on one threshold) stays off the scale
        top = max(top, spec["gamma1"] * 1.5)
        score_ax.plot([], [], color="tab:red", ls=":", lw=1, label=f"gamma2 {spec['gamma2']:.3g} (off the scale)")
    score_ax.set_ylim(min(0.0, *(w[2] for w in spec["windows"])), top)
    score_ax.set_ylabel(printable(spec["score_name"]), fontsize=8, **_PLAIN)
    score_ax.legend(fontsize=7, loc="upper right")
    labels = np.asarray(spec["labels"], dtype=np.int64)
    t = np.arange(labels.size)
    label_ax.step(t + 0.5, labels, where="mid", color="tab:blue", lw=1.0)
    ex = np.asarray(spec["exception_frames"], dtype=np.int64)
    if ex.size:
        label_ax.scatter(ex + 0.5, labels[ex], s=40, facecolors="none", edgecolors="red", lw=1.3, zorder=4,
                         label="exception frame")  # fmt: skip
        label_ax.legend(fontsize=7, loc="upper right")
    shown = np.unique(labels)
    label_ax.set_yticks(shown)
    if names:
        label_ax.set_yticklabels([printable(names[i]) if 0 <= i < len(names) else str(i) for i in shown], fontsize=7,
                                 **_PLAIN)  # fmt: skip
    label_ax.set_ylim(shown.min() - 0.7, shown.max() + 0.7)
    label_ax.set_xlim(0, n)
    label_ax.set_xlabel("frame", **_PLAIN)
    fig.suptitle(printable(spec["title"]), fontsize=10, **_PLAIN)
    fig.tight_layout()
    return save_figure(fig, path, dpi)

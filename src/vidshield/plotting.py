"""Figures as PNG files: a matplotlib ``Figure`` on its own Agg canvas (no pyplot state), written
atomically. Every stage that draws (training curves, detection figures, reports) starts here.

Text is drawn verbatim (:data:`PLAIN`: no mathtext, no TeX), so a ``$`` in a name stays a dollar.
"""

from __future__ import annotations

from pathlib import Path

from vidshield.utils import atomic_write_bytes

__all__ = ["PLAIN", "new_figure", "save_figure"]

#: keyword arguments of matplotlib text calls that draw the text as it is
PLAIN = {"parse_math": False, "usetex": False}


def new_figure(width: float, height: float):
    """A matplotlib ``Figure`` of ``width`` x ``height`` inches on its own Agg canvas (no pyplot state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig, path: str | Path, dpi: int) -> Path:
    """Write ``fig`` as a PNG at ``dpi`` (atomically); returns ``path``."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return atomic_write_bytes(path, buf.getvalue())


def before_after_difference(before, after, *, amplify: float = 8.0):
    """The amplified difference image of two uint8 ``(H, W, 3)`` frames: ``|after - before| *
    amplify``, clipped to 0..255 (uint8). Zero where the defense changed nothing."""
    import numpy as np

    diff = np.abs(after.astype(np.int16) - before.astype(np.int16)) * amplify
    return np.clip(diff, 0, 255).astype(np.uint8)


def plot_before_after(rows, path: str | Path, *, amplify: float = 8.0, title: str = "", dpi: int = 100) -> Path:
    """One row per frame: the frame before, after, and their difference x ``amplify``.

    Args:
        rows: ``(frame index, before uint8 (H, W, 3), after uint8 (H, W, 3))``, same sizes.
    """
    rows = list(rows)
    if not rows:
        raise ValueError("plot_before_after needs at least one frame")
    h, w = rows[0][1].shape[:2]
    fig = new_figure(3 * 2.4, len(rows) * 2.4 * h / w + 0.6)
    axes = fig.subplots(len(rows), 3, squeeze=False)
    for r, (t, before, after) in enumerate(rows):
        images = (before, after, before_after_difference(before, after, amplify=amplify))
        labels = (f"frame {t}: before", "after", f"|difference| x {amplify:g}")
        for ax, image, label in zip(axes[r], images, labels):
            ax.imshow(image)
            ax.set_title(label, fontsize=8, **PLAIN)
            ax.set_xticks([])
            ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=9, **PLAIN)
    fig.tight_layout()
    return save_figure(fig, path, dpi)

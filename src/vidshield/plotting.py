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

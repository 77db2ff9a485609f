"""Which frames of a clip to use: T frame indices out of the ``num_available`` a video has.

Evaluation samples deterministically (:func:`vidshield.io.uniform_indices`: evenly spaced from
the first to the last frame, the same indices as ``vidshield.io.read_frames(path, num_frames=T)``); training
samples at random (:func:`random_indices`, one random frame in each of T
equal segments, so the clip still spans the whole action). Shorter videos repeat frames.
"""

from __future__ import annotations

import torch

from vidshield.io.read import uniform_indices

__all__ = ["SAMPLINGS", "random_indices", "random_window_indices", "sample_indices"]

SAMPLINGS = ("uniform", "random")


def _check(num_available: int, num_frames: int) -> None:
    if num_available < 1:
        raise ValueError(f"a video needs at least one frame to sample from, got num_available={num_available}")
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")


def random_indices(num_available: int, num_frames: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """One random frame in each of ``num_frames`` equal segments (jittered uniform sampling).

    Args:
        generator: source of randomness; ``None`` uses torch's global RNG (which a DataLoader
            seeds per worker).

    Returns:
        ``int64 (num_frames,)``, non-decreasing, in ``[0, num_available)``. When the video has
        fewer frames than asked for, segments are shorter than a frame and frames repeat.
    """
    _check(num_available, num_frames)
    starts = torch.arange(num_frames, dtype=torch.float64) * (num_available / num_frames)
    jitter = torch.rand(num_frames, generator=generator, dtype=torch.float64) * (num_available / num_frames)
    return (starts + jitter).floor().long().clamp_(0, num_available - 1)


def random_window_indices(
    num_available: int, num_frames: int, *, min_span: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Temporal jitter: a random window covering ``min_span``-1 of the video (uniform length and
    position), then :func:`random_indices` inside it.

    Returns:
        ``int64 (num_frames,)``, non-decreasing, in ``[0, num_available)``.
    """
    _check(num_available, num_frames)
    if not 0 < min_span <= 1:
        raise ValueError(f"min_span must be in (0, 1], got {min_span}")
    u = torch.rand(2, generator=generator, dtype=torch.float64).tolist()
    span = max(1, min(num_available, round(num_available * (min_span + u[0] * (1 - min_span)))))
    start = int(u[1] * (num_available - span + 1))
    return start + random_indices(span, num_frames, generator=generator)


def sample_indices(
    num_available: int, num_frames: int, *, sampling: str = "uniform", generator: torch.Generator | None = None
) -> torch.Tensor:
    """:func:`vidshield.io.uniform_indices` or :func:`random_indices`, by name (``"uniform"`` |
    ``"random"``) -> ``int64 (num_frames,)``."""
    if sampling == "uniform":
        return torch.from_numpy(uniform_indices(num_available, num_frames))
    if sampling == "random":
        return random_indices(num_available, num_frames, generator=generator)
    raise ValueError(f"sampling must be one of {SAMPLINGS}, got {sampling!r}")

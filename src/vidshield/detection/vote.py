"""The per-frame majority vote (beyond the paper; a hardening switch of the pipeline).

The detection network labels every frame on its own (the CNN+LSTM with its recurrence removed),
so an attacker who changes ``k`` frames changes at most ``k`` of the ``T`` votes: as long as the
clean frames' labels are right, ``k < T / 2`` changed frames cannot move the majority, whatever
the per-frame budget. The video classifier (the LSTM over all frames, or C3D) has no such bound.
"""

from __future__ import annotations

import torch

__all__ = ["frame_vote"]


def frame_vote(frame_labels: torch.Tensor, num_classes: int, tie_break: torch.Tensor | None = None) -> torch.Tensor:
    """The most frequent per-frame label of each video.

    Args:
        frame_labels: ``int64 (N, T)`` per-frame labels.
        num_classes: K.
        tie_break: ``float (N, K)`` class probabilities in [0, 1] that decide between classes with
            the same count (half of them is added to the counts, which never overturns a count
            difference); None: the lowest class index wins a tie.

    Returns:
        ``int64 (N,)``.
    """
    labels = torch.as_tensor(frame_labels).to(torch.int64)
    if labels.dim() != 2:
        raise ValueError(f"frame_labels must be (N, T), got shape {tuple(labels.shape)}")
    counts = torch.zeros(labels.shape[0], num_classes, dtype=torch.float64, device=labels.device)
    counts.scatter_add_(1, labels, torch.ones_like(labels, dtype=torch.float64))
    if tie_break is not None:
        counts = counts + 0.5 * tie_break.to(device=labels.device, dtype=torch.float64).clamp(0.0, 1.0)
    return counts.argmax(dim=1)

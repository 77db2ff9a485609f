"""The :class:`Defense` interface shared by the spatial and temporal defenses."""

from __future__ import annotations

import torch
from torch import nn


class Defense(nn.Module):
    """A purification step: ``forward(video) -> video`` of the same shape and range.

    Shape:
        video ``float32 (N, T, C, H, W)`` in [0, 1] -> same.

    Attributes:
        differentiable: False when the defense is not differentiable (quantisation, codecs,
            block matching); such a defense provides :meth:`surrogate`, a differentiable
            stand-in used by BPDA (Athalye et al. 2018) so adaptive attacks can run through it.
    """

    differentiable: bool = True

    def surrogate(self, video: torch.Tensor) -> torch.Tensor:
        """Differentiable approximation of ``forward`` for BPDA. Default: identity."""
        return video

    def bpda(self, video: torch.Tensor) -> torch.Tensor:
        """Forward value of the defense with the gradient of :meth:`surrogate` (straight-through)."""
        if self.differentiable:
            return self(video)
        with torch.no_grad():
            purified = self(video)
        approx = self.surrogate(video)
        return approx + (purified - approx).detach()

"""Batched prediction: the one loop that classifies a set of clips."""

from __future__ import annotations

import torch

from vidshield.utils import eval_mode, module_device

__all__ = ["predict_labels"]


@torch.no_grad()
def predict_labels(model: torch.nn.Module, videos: torch.Tensor, *, batch_size: int = 8, device=None) -> list[int]:
    """Top-1 class of every video: ``videos (N, T, 3, H, W)`` -> ``N`` ints, ``batch_size`` videos
    per forward pass on ``device`` (default: the model's), in eval mode (modes restored)."""
    device = module_device(model) if device is None else device
    out: list[int] = []
    with eval_mode(model):
        for i in range(0, videos.shape[0], batch_size):
            out += model(videos[i : i + batch_size].to(device)).argmax(-1).cpu().tolist()
    return out

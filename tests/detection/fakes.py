"""Fake classifiers for the detection tests: per-frame labels set by the frames' colours, so label
sequences (and hence alpha) are exactly controllable."""

from __future__ import annotations

import torch
from torch import nn

from vidshield.models.base import InputSpec, VideoClassifier

NUM_CLASSES = 3
SIZE = 8


class MeanColourClassifier(VideoClassifier):
    """Per-frame logits = 10 x the frame's mean R, G, B, so a frame painted in primary colour k
    gets label k. Video logits = mean over frames. Counts its passes over frames."""

    has_frame_logits = True

    def __init__(self, *, frames: int = 8, size: int = SIZE):
        super().__init__()
        self.input_spec = InputSpec(frames=frames, height=size, width=size)
        self.num_classes = NUM_CLASSES
        self.scale = nn.Parameter(torch.tensor(10.0))
        self.frame_passes = 0

    def frame_logits(self, video: torch.Tensor) -> torch.Tensor:
        self.frame_passes += 1
        return video.mean(dim=(-2, -1)) * self.scale

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return self.frame_logits(video).mean(dim=1)

    def forward_with_frames(self, video: torch.Tensor):
        f = self.frame_logits(video)
        return f.mean(dim=1), f


class NoFramePath(VideoClassifier):
    """A classifier without a per-frame path (like C3D)."""

    def __init__(self):
        super().__init__()
        self.input_spec = InputSpec(frames=8, height=SIZE, width=SIZE)
        self.num_classes = NUM_CLASSES
        self.lin = nn.Linear(3, NUM_CLASSES)

    def forward(self, video):
        return self.lin(video.mean(dim=(1, 3, 4)))


def video_from_labels(labels, size: int = SIZE) -> torch.Tensor:
    """Frames painted in primary colour ``labels[t]`` (0 red, 1 green, 2 blue): float (T, 3, s, s)."""
    labels = torch.as_tensor(labels)
    video = torch.full((labels.numel(), 3, size, size), 0.1)
    video[torch.arange(labels.numel()), labels] = 0.9
    return video

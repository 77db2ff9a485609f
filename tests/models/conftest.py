"""Fixtures for the model tests: a tiny hand-made data set of two clearly different classes."""

from __future__ import annotations

import pytest
import torch


class MovingBlobs(torch.utils.data.Dataset):
    """Two classes on a grey background: a bright (class 1) or dark (class 0) 8x8 blob moving
    right by one pixel per frame from a random start. Items ``(float32 (T, 3, H, W) in [0, 1], int)``."""

    classes = ["dark", "bright"]

    def __init__(self, num_videos: int, *, seed: int, frames: int = 16, size: int = 32):
        g = torch.Generator().manual_seed(seed)
        self.items = []
        for i in range(num_videos):
            label = i % 2
            video = torch.full((frames, 3, size, size), 0.5)
            start, row = torch.randint(0, size - 8, (2,), generator=g).tolist()
            for t in range(frames):
                col = (start + t) % (size - 8)
                video[t, :, row : row + 8, col : col + 8] = 1.0 if label else 0.0
            noise = 0.05 * torch.rand(video.shape, generator=g)
            self.items.append(((video + noise).clamp(0, 1), label))

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        return self.items[index]

    @property
    def labels(self):
        return [label for _, label in self.items]


@pytest.fixture
def blobs():
    """``blobs(num_videos, seed)`` -> a :class:`MovingBlobs` data set (16 x 32 x 32 clips)."""
    return lambda num_videos, seed=0: MovingBlobs(num_videos, seed=seed)


@pytest.fixture
def rng():
    return torch.Generator().manual_seed(1234)

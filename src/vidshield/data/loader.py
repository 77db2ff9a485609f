"""A seeded DataLoader: the same seed gives the same batches, with or without workers."""

from __future__ import annotations

import random

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

__all__ = ["make_loader", "seed_worker"]


def seed_worker(worker_id: int) -> None:
    """``worker_init_fn``: seed python's and numpy's RNGs from the worker's torch seed (which the
    DataLoader derives from its generator), so every RNG in a worker is reproducible."""
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)


def make_loader(
    dataset: Dataset,
    *,
    batch_size: int,
    shuffle: bool,
    num_workers: int = 0,
    seed: int = 0,
    drop_last: bool = False,
    pin_memory: bool = False,
) -> DataLoader:
    """A DataLoader whose shuffling and per-worker RNGs derive from ``seed``.

    Batches are ``(videos float32 (N, T, 3, H, W) in [0, 1], labels int64 (N,))``. Random clip
    sampling and augmentation inside workers use torch's global RNG, which the DataLoader seeds
    per worker from this generator, so runs with the same seed and ``num_workers`` repeat.
    With ``num_workers=0`` they use the main process's global RNG (seed it with
    :func:`vidshield.utils.seed_everything`).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if num_workers < 0:
        raise ValueError(f"num_workers must be >= 0, got {num_workers}")
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=num_workers,
        generator=torch.Generator().manual_seed(seed),
        worker_init_fn=seed_worker,
        drop_last=drop_last,
        pin_memory=pin_memory,
        persistent_workers=num_workers > 0,
    )

"""Data sets built to fit a model: the clip size comes from the model's input spec, so a model
never sees clips of the wrong size, plus the held-out validation split used in training."""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import Dataset, Subset

from vidshield.data import make_dataset
from vidshield.models.base import InputSpec
from vidshield.names import DATASET_NAMES as DATASET_NAMES  # re-exported: the data sets built here


def dataset_for_spec(
    name: str,
    spec: InputSpec,
    *,
    split: str,
    root: str | Path | None = None,
    num_videos: int | None = None,
    seed: int = 0,
    augment: bool = False,
    cache: str | Path | None = None,
) -> Dataset:
    """``vidshield.data.make_dataset`` with frames and size taken from ``spec``.

    Args:
        name: one of :data:`DATASET_NAMES`.
        spec: the model's input spec (T, H, W).
        split: ``train``, ``val`` (synthetic only) or ``test``.
        num_videos: synthetic only: number of clips (the data set's default when ``None``).
    """
    kwargs = {"num_videos": num_videos} if num_videos is not None else {}
    return make_dataset(
        name,
        root=root,
        split=split,
        frames=spec.frames,
        size=(spec.height, spec.width),
        seed=seed,
        augment=augment,
        cache=cache,
        **kwargs,
    )


def holdout_indices(labels: list[int], fraction: float, *, seed: int) -> tuple[list[int], list[int]]:
    """Split item indices into ``(train, val)``, stratified by label: ``round(fraction * n_k)``
    items of each class k (at least one when the class has two or more) go to validation.

    Args:
        labels: the label of every item.
        fraction: share of each class held out, in [0, 1).
        seed: the shuffling seed.
    """
    if not 0 <= fraction < 1:
        raise ValueError(f"validation fraction must be in [0, 1), got {fraction}")
    g = torch.Generator().manual_seed(seed)
    by_class: dict[int, list[int]] = {}
    for i, label in enumerate(labels):
        by_class.setdefault(int(label), []).append(i)
    train, val = [], []
    for label in sorted(by_class):
        items = by_class[label]
        order = [items[j] for j in torch.randperm(len(items), generator=g).tolist()]
        n_val = round(fraction * len(items))
        if fraction > 0 and n_val == 0 and len(items) >= 2:
            n_val = 1
        val += order[:n_val]
        train += order[n_val:]
    return sorted(train), sorted(val)


def train_val_datasets(
    name: str,
    spec: InputSpec,
    *,
    root: str | Path | None = None,
    val_fraction: float = 0.1,
    num_videos: int | None = None,
    seed: int = 0,
    augment: bool = True,
    cache: str | Path | None = None,
) -> tuple[Dataset, Dataset | None, list[str]]:
    """Training and validation sets for a model with input ``spec``.

    Synthetic data: ``num_videos`` training clips and ``round(val_fraction * num_videos)``
    validation clips rendered from the ``val`` split seed (never the same clips as train or test).
    Other data sets: a stratified ``val_fraction`` of the training split is held out (and never
    augmented).

    Returns:
        ``(train_set, val_set or None when val_fraction == 0, class_names)``.
    """
    if name == "synthetic":
        train = dataset_for_spec(
            name, spec, split="train", num_videos=num_videos, seed=seed, augment=augment, cache=cache
        )
        n_val = round(val_fraction * len(train))
        val = dataset_for_spec(name, spec, split="val", num_videos=n_val, seed=seed, cache=cache) if n_val else None
        return train, val, list(train.classes)
    full = dataset_for_spec(name, spec, split="train", root=root, seed=seed, augment=augment, cache=cache)
    labels = list(full.labels)
    train_idx, val_idx = holdout_indices(labels, val_fraction, seed=seed)
    if not val_idx:
        return full, None, list(full.classes)
    plain = (
        dataset_for_spec(name, spec, split="train", root=root, seed=seed, augment=False, cache=cache)
        if augment
        else full
    )
    return Subset(full, train_idx), Subset(plain, val_idx), list(full.classes)

"""Data sets built to fit a model: the clip size comes from the model's input spec, so a model
never sees clips of the wrong size, plus the held-out validation split used in training and the
UT-Interaction leave-one-sequence-out folds (:func:`loso_datasets`)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import Dataset, Subset

from vidshield.data import loso_fold, make_dataset
from vidshield.errors import DataRootError
from vidshield.models.base import InputSpec
from vidshield.names import DATASET_NAMES as DATASET_NAMES  # re-exported: the data sets built here


class Repeated(Dataset):
    """Every item of ``dataset`` ``times`` times per pass (item ``i`` is ``dataset[i % n]``): with a
    randomly sampling data set, several temporal windows and crops of each clip per epoch."""

    def __init__(self, dataset: Dataset, times: int):
        if times < 1:
            raise ValueError(f"times must be >= 1, got {times}")
        self.dataset, self.times = dataset, int(times)

    def __len__(self) -> int:
        return len(self.dataset) * self.times

    def __getitem__(self, i: int):
        return self.dataset[i % len(self.dataset)]


def dataset_for_spec(
    name: str,
    spec: InputSpec,
    *,
    split: str,
    root: str | Path | None = None,
    num_videos: int | None = None,
    seed: int = 0,
    augment: bool = False,
    strong_augment: bool = False,
    cache: str | Path | None = None,
) -> Dataset:
    """``vidshield.data.make_dataset`` with frames and size taken from ``spec``.

    Args:
        name: one of :data:`DATASET_NAMES`.
        spec: the model's input spec (T, H, W).
        split: ``train``, ``val`` (synthetic only) or ``test``.
        num_videos: synthetic only: number of clips (the data set's default when ``None``).
        strong_augment: clips only: the stronger training augmentation (ignored without ``augment``).

    Raises:
        DataRootError: ``strong_augment`` for a data set other than ``clips``.
    """
    kwargs = {"num_videos": num_videos} if num_videos is not None else {}
    if strong_augment and augment:
        if name != "clips":
            raise DataRootError(f"the strong augmentation works on packed clip sets (--dataset clips), not {name!r}")
        kwargs["strong_augment"] = True
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
    strong_augment: bool = False,
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
    full = dataset_for_spec(
        name, spec, split="train", root=root, seed=seed, augment=augment, strong_augment=strong_augment, cache=cache
    )
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


def loso_datasets(
    name: str,
    spec: InputSpec,
    fold: int,
    *,
    root: str | Path | None = None,
    seed: int = 0,
    augment: bool = True,
    strong_augment: bool = False,
    cache: str | Path | None = None,
) -> tuple[Dataset, Dataset, Dataset, list[str], dict]:
    """Train, validation and test sets of UT-Interaction leave-one-sequence-out fold ``fold``
    (:func:`vidshield.data.loso_fold`: test = sequence ``fold``, validation = the next sequence of
    its set, train = the other 8), for ``ut-interaction`` or a ``clips`` set packed from it.

    Returns:
        ``(train, val, test, class_names, fold_info)``; ``fold_info`` records the sequences.

    Raises:
        DataRootError: the data set holds no sequence numbers (not UT-Interaction, or a clip set
            packed before they were stored: pack it again).
    """
    if name not in ("ut-interaction", "clips"):
        raise DataRootError(f"--protocol loso is UT-Interaction's: use --dataset ut-interaction or clips, not {name!r}")
    split = "train" if fold <= 10 else "test"  # set1 | set2
    plain = dataset_for_spec(name, spec, split=split, root=root, seed=seed, cache=cache)
    sequences = getattr(plain, "sequences", None)
    if sequences is None:
        raise DataRootError(
            f"the {split} clips of {root} carry no sequence numbers; pack them again with "
            "`vidshield pack --dataset ut-interaction` (this version stores them)"
        )
    split_of = loso_fold(sequences, fold)
    train = plain
    if augment:
        train = dataset_for_spec(
            name, spec, split=split, root=root, seed=seed, augment=True, strong_augment=strong_augment, cache=cache
        )
    info = {
        "protocol": "loso",
        "fold": fold,
        "set": split_of.set,
        "test_sequence": split_of.test_sequence,
        "val_sequence": split_of.val_sequence,
        "train_sequences": list(split_of.train_sequences),
    }
    subsets = (
        Subset(train, list(split_of.train)),
        Subset(plain, list(split_of.val)),
        Subset(plain, list(split_of.test)),
    )
    return (*subsets, list(plain.classes), info)

"""``make_dataset(name, ...)``: one entry point for every data set, filled by a registry."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from torch.utils.data import Dataset

from vidshield.data.clipset import ClipSet
from vidshield.data.datasets import UCF101, UTInteraction, VideoFolder, default_data_root
from vidshield.data.synthetic import SyntheticActions, synthetic_split_seed
from vidshield.data.transforms import train_transform
from vidshield.errors import DataRootError

__all__ = ["DATASETS", "register_dataset", "make_dataset"]

DATASETS: dict[str, Callable[..., Dataset]] = {}

_DEFAULT_SYNTHETIC_VIDEOS = {"train": 1000, "val": 200, "test": 200}


def register_dataset(name: str):
    """Decorator: register a builder ``fn(*, root, split, frames, size, seed, augment, sampling,
    cache, **options) -> Dataset`` under ``name``."""

    def wrap(fn):
        if name in DATASETS:
            raise ValueError(f"data set {name!r} is already registered")
        DATASETS[name] = fn
        return fn

    return wrap


@register_dataset("synthetic")
def _synthetic(*, root, split, frames, size, seed, augment, sampling, cache, num_videos=None, num_classes=10):
    if root is not None:
        raise ValueError("the synthetic data set is generated on the fly and takes no root")
    if size is None:
        raise ValueError("the synthetic data set has no native size; give size=(height, width)")
    height, width = size
    count = _DEFAULT_SYNTHETIC_VIDEOS.get(split, 0) if num_videos is None else num_videos
    return SyntheticActions(
        count,
        num_classes=num_classes,
        frames=frames,
        height=height,
        width=width,
        seed=synthetic_split_seed(seed, split),
        transform=train_transform(size) if augment else None,
    )


@register_dataset("ut-interaction")
def _ut_interaction(*, root, split, frames, size, seed, augment, sampling, cache):
    root = default_data_root("ut-interaction") if root is None else root
    return UTInteraction(root, split=split, frames=frames, size=size, sampling=sampling, augment=augment, cache=cache)


@register_dataset("ucf101")
def _ucf101(*, root, split, frames, size, seed, augment, sampling, cache, fold=1, splits_dir=None):
    root = default_data_root("ucf101") if root is None else root
    return UCF101(
        root, fold=fold, split=split, splits_dir=splits_dir, frames=frames, size=size,
        sampling=sampling, augment=augment, cache=cache,
    )  # fmt: skip


@register_dataset("folder")
def _folder(*, root, split, frames, size, seed, augment, sampling, cache, classes=None):
    if root is None:
        raise DataRootError("the 'folder' data set needs a root (root/<class>/<clip> or root/<split>/<class>/<clip>)")
    root = Path(root)
    if (root / split).is_dir():
        root = root / split
    return VideoFolder(root, frames=frames, size=size, classes=classes, sampling=sampling, augment=augment, cache=cache)


@register_dataset("clips")
def _clips(*, root, split, frames, size, seed, augment, sampling, cache, strong_augment=False):
    if root is None:
        raise DataRootError(
            "the 'clips' data set needs a root: a folder with <split>.safetensors from `vidshield pack`"
        )
    root = Path(root)
    path = root / f"{split}.safetensors" if root.is_dir() else root
    return ClipSet(path, frames=frames, size=size, augment=augment, strong=strong_augment)


def make_dataset(
    name: str,
    *,
    root: str | os.PathLike | None = None,
    split: str = "train",
    frames: int = 16,
    size: Sequence[int] | None = (112, 112),
    seed: int = 0,
    augment: bool = False,
    sampling: str | None = None,
    cache: str | os.PathLike | None = None,
    **options,
) -> Dataset:
    """Build a data set of ``(float32 (T, 3, H, W) in [0, 1], label)`` items by name.

    Args:
        name: ``"synthetic"``, ``"ut-interaction"``, ``"ucf101"``, ``"folder"`` or ``"clips"`` (a
            folder of ``<split>.safetensors`` clip sets from ``vidshield pack``).
        root: data folder; default from ``VIDSHIELD_DATA`` (see :func:`default_data_root`).
            ``"folder"`` needs it and uses ``root/<split>`` when that exists.
        split: ``"train"`` or ``"test"`` (``"val"`` too for synthetic).
        frames, size: clip size T and ``(H, W)``; ``size=None`` keeps each video's own size (file
            data sets, without ``augment``).
        seed: synthetic only: the clips of split ``s`` come from ``synthetic_split_seed(seed, s)``,
            so train and test never share clips. (File data sets draw their randomness from the
            loader; see :func:`vidshield.data.make_loader`.)
        augment: training augmentation (scale-then-random-crop, horizontal flip).
        sampling: ``"uniform"`` or ``"random"``; default ``"random"`` when ``augment`` else
            ``"uniform"``. Synthetic clips are rendered with exactly ``frames`` frames.
        cache: frame-cache folder for file data sets (synthetic clips are rendered, not cached).
        **options: per data set: synthetic ``num_videos`` (default 1000 train / 200 test),
            ``num_classes``; ucf101 ``fold``, ``splits_dir``; folder ``classes``; clips
            ``strong_augment`` (:data:`vidshield.data.clipset.STRONG_AUGMENT`).
    """
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; known: {sorted(DATASETS)}")
    if sampling is None:
        sampling = "random" if augment else "uniform"
    return DATASETS[name](
        root=root, split=split, frames=frames, size=None if size is None else tuple(size), seed=seed, augment=augment,
        sampling=sampling, cache=cache, **options,
    )  # fmt: skip

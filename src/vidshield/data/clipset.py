"""Clip sets: a data set decoded once into one safetensors file (``vidshield pack``), then served
from memory, so training re-decodes nothing and runs where PyAV is missing (the GPU machine)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch.utils.data import Dataset

from vidshield.data.sampling import random_window_indices, sample_indices
from vidshield.data.transforms import center_crop, color_jitter, horizontal_flip, random_crop, random_resized_crop
from vidshield.errors import DataRootError

__all__ = ["ClipSet", "STRONG_AUGMENT", "pack_dataset"]

# ``strong=True``: temporal windows of 60-100 % of the clip, crops of 40-100 % of the frame area
# resized to the model's size, horizontal flips (left/right does not change UT's classes),
# brightness / contrast / saturation factors in [0.7, 1.3]
STRONG_AUGMENT = {"min_span": 0.6, "crop_scale": (0.4, 1.0), "color": 0.3}


class ClipSet(Dataset):
    """Clips from a clip-set file (:func:`vidshield.io.save_clips`), resampled on the fly.

    Args:
        path: the ``.safetensors`` clip set (``metadata["classes"]`` names the classes).
        frames: T of the clips served; stored clips may hold more frames (uniform sampling for
            evaluation, jittered uniform sampling for training).
        size: ``(H, W)`` served; stored frames may be larger (centre crop for evaluation, random
            crop for training).
        augment: training mode: random frames, random crop, horizontal flip (global torch RNG,
            which :func:`vidshield.data.make_loader` seeds per worker).
        strong: with ``augment``, the stronger recipe :data:`STRONG_AUGMENT` instead.

    ``sequences``: each clip's sequence number when the packed data set had them (UT-Interaction,
    for :func:`vidshield.data.loso_fold`), else None.

    Items: ``(float32 (T, 3, H, W) in [0, 1], label int)``.
    """

    def __init__(
        self, path: str | os.PathLike, *, frames: int, size: Sequence[int], augment: bool = False, strong: bool = False
    ):
        from vidshield.io import load_clips

        path = Path(path)
        if not path.is_file():
            raise DataRootError(f"clip set not found: {path} (make one with `vidshield pack`)")
        videos, labels, meta = load_clips(path)
        h, w = int(size[0]), int(size[1])
        if videos.shape[-2] < h or videos.shape[-1] < w:
            raise DataRootError(f"{path} holds {videos.shape[-2]}x{videos.shape[-1]} frames, smaller than {h}x{w}")
        self.videos = (videos * 255).round().to(torch.uint8)  # a quarter of the memory
        self.labels = labels.tolist()
        self.classes = list(meta.get("classes") or [str(i) for i in range(int(labels.max()) + 1)])
        self.frames, self.size, self.augment, self.strong = int(frames), (h, w), bool(augment), bool(strong)
        self.metadata = meta
        sequences = meta.get("sequences")
        if sequences is not None and len(sequences) != len(self.labels):
            raise DataRootError(f"{path}: {len(sequences)} sequence numbers for {len(self.labels)} clips")
        self.sequences = None if sequences is None else [int(s) for s in sequences]

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        video = self.videos[i]
        if self.augment and self.strong:
            idx = random_window_indices(video.shape[0], self.frames, min_span=STRONG_AUGMENT["min_span"])
        else:
            idx = sample_indices(video.shape[0], self.frames, sampling="random" if self.augment else "uniform")
        clip = video[idx].to(torch.float32).div_(255)
        if self.augment and self.strong:
            clip = color_jitter(
                random_resized_crop(clip, self.size, scale=STRONG_AUGMENT["crop_scale"]), STRONG_AUGMENT["color"]
            )
            if bool(torch.rand(()) < 0.5):
                clip = horizontal_flip(clip)
        elif self.augment:
            clip = random_crop(clip, self.size)
            if bool(torch.rand(()) < 0.5):
                clip = horizontal_flip(clip)
        else:
            clip = center_crop(clip, self.size)
        return clip.contiguous(), self.labels[i]


def pack_dataset(dataset: Dataset, path: str | os.PathLike, *, metadata: dict | None = None, progress=None) -> Path:
    """Decode every item of ``dataset`` into one clip-set file (uint8 when exact); the data set's
    ``sequences`` (UT-Interaction) are kept in the metadata.

    Returns:
        The path written (atomically).
    """
    from vidshield.io import save_clips

    task = progress.add_task(f"packing {Path(path).name}", total=len(dataset)) if progress is not None else None
    videos, labels = [], []
    for i in range(len(dataset)):
        v, y = dataset[i]
        videos.append(v.mul(255).round().div(255))
        labels.append(int(y))
        if task is not None:
            progress.advance(task)
    meta = {"classes": list(getattr(dataset, "classes", [])), **(metadata or {})}
    if getattr(dataset, "sequences", None) is not None:
        meta["sequences"] = [int(s) for s in dataset.sequences]
    return save_clips(path, torch.stack(videos), torch.tensor(labels, dtype=torch.int64), meta)

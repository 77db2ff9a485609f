"""Data: the synthetic action generator, video-file data sets (folder-per-class, UCF101,
UT-Interaction), clip sampling, transforms, a frame cache and a seeded DataLoader.

Every data set yields ``(video, label)``: ``float32 (T, 3, H, W)`` in [0, 1] and an ``int``.
"""

from vidshield.data.cache import FrameCache
from vidshield.data.clipset import ClipSet, pack_dataset
from vidshield.data.datasets import (
    UCF101,
    UT_INTERACTION_CLASSES,
    UT_SET_SEQUENCES,
    LosoFold,
    UTInteraction,
    VideoClipDataset,
    VideoFolder,
    default_data_root,
    loso_fold,
    parse_folds,
)
from vidshield.data.factory import DATASETS, make_dataset, register_dataset
from vidshield.data.loader import make_loader, seed_worker
from vidshield.data.manifest import MANIFEST_NAME, read_manifest
from vidshield.data.sampling import random_indices, sample_indices
from vidshield.data.synthetic import (
    SyntheticActions,
    clip_generator,
    export_synthetic,
    generate_clip,
    synthetic_class_names,
    synthetic_split_seed,
)

__all__ = [
    "MANIFEST_NAME",
    "read_manifest",
    "DATASETS",
    "ClipSet",
    "pack_dataset",
    "FrameCache",
    "SyntheticActions",
    "UCF101",
    "UTInteraction",
    "UT_INTERACTION_CLASSES",
    "UT_SET_SEQUENCES",
    "LosoFold",
    "loso_fold",
    "parse_folds",
    "VideoClipDataset",
    "VideoFolder",
    "clip_generator",
    "default_data_root",
    "export_synthetic",
    "generate_clip",
    "make_dataset",
    "make_loader",
    "random_indices",
    "register_dataset",
    "sample_indices",
    "seed_worker",
    "synthetic_class_names",
    "synthetic_split_seed",
]

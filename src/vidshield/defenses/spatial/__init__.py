"""The spatial defense (ComDefend on every frame) and simple per-frame baselines."""

from vidshield.defenses.spatial.baselines import (
    BitDepthDefense,
    JpegDefense,
    MedianDefense,
    bit_depth,
    jpeg_frames,
    median_frames,
)
from vidshield.defenses.spatial.comdefend import (
    ComCNN,
    ComDefend,
    RecCNN,
    SpatialDefense,
    binarize_code,
    load_comdefend,
    purify_frames,
    straight_through_binarize,
)
from vidshield.defenses.spatial.training import FrameCropSampler, TrainResult, evaluate_psnr, psnr, train_comdefend

__all__ = [
    "BitDepthDefense",
    "ComCNN",
    "ComDefend",
    "FrameCropSampler",
    "JpegDefense",
    "MedianDefense",
    "RecCNN",
    "SpatialDefense",
    "TrainResult",
    "binarize_code",
    "bit_depth",
    "evaluate_psnr",
    "jpeg_frames",
    "load_comdefend",
    "median_frames",
    "psnr",
    "purify_frames",
    "straight_through_binarize",
    "train_comdefend",
]

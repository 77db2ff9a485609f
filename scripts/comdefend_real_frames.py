"""Frames files for ComDefend on real footage, at native size, split by whole source clips.

Writes four frames files (safetensors of uint8 ``(N, H, W, 3)`` tensors, one per frame size, as
``vidshield train-comdefend --frames-file`` reads them) under ``--out``:

- ``real-train.safetensors``: UT-Interaction sequences 1-7 (set1) and 11-17 (set2), the media clips
  but ``--test-clip``, and the natural photographs scikit-image ships (``skimage.data``);
- ``real-val.safetensors``: UT-Interaction sequences 8 and 18 (choosing sigma / lambda);
- ``real-test-ut.safetensors`` (UT-Interaction sequences 9, 10, 19, 20) and
  ``real-test-media.safetensors`` (``--test-clip``): never seen in training or selection; the
  PSNR table of ``benchmarks/bench_spatial_real.py``.

Nothing is resized. scikit-image is a development dependency (``pip install 'vidshield[dev]'``);
nothing at run time needs it.

    python scripts/comdefend_real_frames.py --data DATA/ut-interaction --media DATA/media --out packs/cdreal
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from vidshield.data.datasets import UTInteraction
from vidshield.defenses.spatial.training import FrameCropSampler
from vidshield.io import read_video

VAL_SEQUENCES = (8, 18)
TEST_SEQUENCES = (9, 10, 19, 20)
#: skimage.data photographs that ship with the wheel (no download); grey ones become 3 channels.
SKIMAGE_PHOTOS = (
    "astronaut",
    "chelsea",
    "coffee",
    "rocket",
    "hubble_deep_field",
    "immunohistochemistry",
    "camera",
    "coins",
    "brick",
    "grass",
    "gravel",
    "clock",
    "moon",
)


def skimage_photos() -> list[torch.Tensor]:
    """The photographs of :data:`SKIMAGE_PHOTOS` as uint8 ``(1, H, W, 3)``."""
    import skimage.data

    out = []
    for name in SKIMAGE_PHOTOS:
        image = torch.from_numpy(getattr(skimage.data, name)().copy())
        if image.dim() == 2:
            image = image[..., None].expand(-1, -1, 3)
        out.append(image[None].contiguous())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="the ut-interaction folder")
    parser.add_argument("--media", type=Path, required=True, help="folder of unlabelled real clips (*.mp4)")
    parser.add_argument("--test-clip", default="bikes.mp4", help="media clip held out for the test set")
    parser.add_argument("--frames", type=int, default=4, help="frames per UT-Interaction clip (spread evenly)")
    parser.add_argument("--test-frames", type=int, default=1, help="frames per held-out UT clip")
    parser.add_argument("--media-frames", type=int, default=16, help="frames per training media clip")
    parser.add_argument("--test-media-frames", type=int, default=6, help="frames of the held-out media clip")
    parser.add_argument("--out", type=Path, default=Path("packs/cdreal"))
    args = parser.parse_args()

    parts: dict[str, list[torch.Tensor]] = {"train": [], "val": [], "test-ut": [], "test-media": []}
    for split in ("train", "test"):
        for frames, part_of in ((args.frames, ("train", "val")), (args.test_frames, ("test-ut",))):
            ut = UTInteraction(args.data, split=split, frames=frames, size=None)
            for i, seq in enumerate(ut.sequences):
                part = "test-ut" if seq in TEST_SEQUENCES else "val" if seq in VAL_SEQUENCES else "train"
                if part in part_of:
                    parts[part].append(ut[i][0])
    for clip in sorted(args.media.glob("*.mp4")):
        held = clip.name == args.test_clip
        video = read_video(clip, num_frames=args.test_media_frames if held else args.media_frames)
        parts["test-media" if held else "train"].append(video)
    if not any(c.name == args.test_clip for c in args.media.glob("*.mp4")):
        raise SystemExit(f"--test-clip {args.test_clip} not found in {args.media}")
    pools = {name: FrameCropSampler.from_clips(clips) for name, clips in parts.items()}
    pools["train"] = FrameCropSampler(pools["train"].pools + skimage_photos())
    for name, pool in pools.items():
        path = pool.save(f"{args.out}-{name}.safetensors")
        sizes = sorted({tuple(p.shape[1:3]) for p in pool.pools})
        print(f"{path}: {pool.num_frames} frames, {len(sizes)} sizes, smallest side {pool.max_crop}")


if __name__ == "__main__":
    main()

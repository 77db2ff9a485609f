"""UT-Interaction training recipes side by side on the same leave-one-sequence-out folds (CPU).

Each recipe trains the shipped architectures (``c3d-small``, ``lrcn-small``) from scratch on the 8
training sequences of a fold, selects nothing (the last epoch of a cosine schedule is kept: the
validation sequence holds 6 clips, too few to choose an epoch by), and reports the test sequence's
top-1 for a single centred view and for the mean over several temporal windows and their mirror
images (multi-view testing, as C3D's paper averages clip predictions over a video). The figures
are a comparison of recipes; the shipped models are trained with ``vidshield train``.

Resumable: every finished (recipe, fold) is kept in ``--out`` and skipped on a rerun.

    vidshield pack --dataset ut-interaction --root UT --frames 48 --size 64 64 --out packs/ut48
    nice python benchmarks/bench_ut_recipes.py --pack packs/ut48 --recipes c3d-rgb c3d-motion \\
        --folds 1 3 5 7 9 11 13 15 17 19 --out results/ut-recipes.json
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import safe_open

from vidshield.data import loso_fold
from vidshield.models import create_model

#: name -> (architecture, overrides, training settings)
RECIPES: dict[str, dict] = {
    "c3d-rgb": {"arch": "c3d-small", "motion": False},
    "c3d-motion": {"arch": "c3d-small", "motion": True},
    "c3d-motion-32": {"arch": "c3d-small", "motion": True, "size": 32},
    "c3d-rgb-32": {"arch": "c3d-small", "motion": False, "size": 32},
    "lrcn-rgb": {"arch": "lrcn-small", "motion": False},
    "lrcn-motion": {"arch": "lrcn-small", "motion": True},
    "lrcn-motion-32": {"arch": "lrcn-small", "motion": True, "size": 32},
    "lrcn-rgb-32": {"arch": "lrcn-small", "motion": False, "size": 32},
}
DEFAULTS = {"size": 64, "frames": 16, "epochs": 40, "clips_per_video": 4, "batch_size": 8, "lr": 2e-3,
            "weight_decay": 5e-4, "label_smoothing": 0.1, "frame_loss_weight": 1.0}  # fmt: skip


def load_pack(folder: Path) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """Both splits of a UT-Interaction pack: uint8 ``(120, F, 3, H, W)``, labels, sequences 1-20."""
    videos, labels, sequences = [], [], []
    for split in ("train", "test"):
        with safe_open(str(folder / f"{split}.safetensors"), "pt") as f:
            meta = json.loads(f.metadata()["vidshield.clips"])
            videos.append(f.get_tensor("videos"))
            labels.append(f.get_tensor("labels"))
            sequences += [int(s) for s in meta["sequences"]]
    return torch.cat(videos), torch.cat(labels), sequences


def window(video: torch.Tensor, start: float, length: float, frames: int) -> torch.Tensor:
    """``frames`` frames evenly spread over [start, start + length) of ``video`` (fractions)."""
    total = video.shape[0]
    idx = (start * total + (torch.arange(frames) + 0.5) * length * total / frames).long().clamp(0, total - 1)
    return video[idx]


def augment(video: torch.Tensor, frames: int, size: int, g: torch.Generator) -> torch.Tensor:
    """A random window (60-100 % of the clip), crop (40-100 % of the area), flip and colour jitter.
    uint8 ``(F, 3, H, W)`` -> float ``(frames, 3, size, size)`` in [0, 1]."""
    r = torch.rand(8, generator=g).tolist()
    length = 0.6 + 0.4 * r[0]
    clip = window(video, (1 - length) * r[1], length, frames).float() / 255
    h, w = clip.shape[-2:]
    area = 0.4 + 0.6 * r[2]
    ch, cw = max(8, int(h * math.sqrt(area))), max(8, int(w * math.sqrt(area)))
    top, left = int((h - ch) * r[3]), int((w - cw) * r[4])
    clip = F.interpolate(clip[..., top : top + ch, left : left + cw], size=(size, size), mode="bilinear",
                         align_corners=False, antialias=True)  # fmt: skip
    if r[5] < 0.5:
        clip = clip.flip(-1)
    scale = 0.7 + 0.6 * r[6]
    mean = clip.mean(dim=(1, 2, 3), keepdim=True)
    return ((clip - mean) * scale + mean * (0.7 + 0.6 * r[7])).clamp(0, 1)


def views(video: torch.Tensor, frames: int, size: int, n_windows: int) -> torch.Tensor:
    """``n_windows`` windows of 80 % of the clip spread over it, each also mirrored."""
    out = []
    for k in range(n_windows):
        start = 0.2 * k / max(1, n_windows - 1) if n_windows > 1 else 0.1
        clip = window(video, start, 0.8, frames).float() / 255
        clip = F.interpolate(clip, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        out += [clip, clip.flip(-1)]
    return torch.stack(out)


def run_fold(recipe: dict, videos, labels, sequences, fold: int, seed: int) -> dict:
    settings = {**DEFAULTS, **recipe}
    size, frames = settings["size"], settings["frames"]
    part = loso_fold([s for s in sequences if (s <= 10) == (fold <= 10)], fold)
    offset = 0 if fold <= 10 else sequences.index(11)
    train = [offset + i for i in part.train]
    test = [offset + i for i in part.test]
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    overrides = {"input_size": (frames, size, size), "motion": settings["motion"]}
    model = create_model(settings["arch"], num_classes=6, **overrides)
    opt = torch.optim.AdamW(model.parameters(), lr=settings["lr"], weight_decay=settings["weight_decay"])
    steps_per_epoch = math.ceil(len(train) * settings["clips_per_video"] / settings["batch_size"])
    total = steps_per_epoch * settings["epochs"]
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=settings["lr"], total_steps=total, pct_start=0.15)
    t0 = time.time()
    for _ in range(settings["epochs"]):
        model.train()
        order = torch.tensor(train).repeat(settings["clips_per_video"])
        order = order[torch.randperm(len(order), generator=g)]
        for batch in order.split(settings["batch_size"]):
            x = torch.stack([augment(videos[i], frames, size, g) for i in batch.tolist()])
            y = labels[batch]
            if model.has_frame_logits:
                logits, frame_logits = model.forward_with_frames(x)
                loss = F.cross_entropy(logits, y, label_smoothing=settings["label_smoothing"])
                loss = loss + settings["frame_loss_weight"] * F.cross_entropy(
                    frame_logits.flatten(0, 1), y.repeat_interleave(frames), label_smoothing=settings["label_smoothing"]
                )
            else:
                loss = F.cross_entropy(model(x), y, label_smoothing=settings["label_smoothing"])
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            sched.step()
    model.eval()
    single, multi, frame_right, frame_total = 0, 0, 0, 0
    with torch.no_grad():
        for i in test:
            v = views(videos[i], frames, size, 5)
            logits = model(v)
            single += int(logits[0].argmax() == labels[i])
            multi += int(logits.softmax(-1).mean(0).argmax() == labels[i])
            if model.has_frame_logits:
                fl = model.frame_logits(v[:1])[0]
                frame_right += int((fl.argmax(-1) == labels[i]).sum())
                frame_total += fl.shape[0]
    out = {"fold": fold, "test_videos": len(test), "top1": single / len(test), "top1_views": multi / len(test),
           "seconds": round(time.time() - t0, 1)}  # fmt: skip
    if frame_total:
        out["frame_top1"] = frame_right / frame_total
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pack", type=Path, required=True)
    p.add_argument("--recipes", nargs="+", choices=sorted(RECIPES), required=True)
    p.add_argument("--folds", nargs="+", type=int, default=list(range(1, 21)))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=None, help="override every recipe's epochs")
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args()
    videos, labels, sequences = load_pack(a.pack)
    results = json.loads(a.out.read_text()) if a.out.is_file() else {"settings": DEFAULTS, "recipes": {}}
    for name in a.recipes:
        recipe = {**RECIPES[name], **({"epochs": a.epochs} if a.epochs else {})}
        entry = results["recipes"].setdefault(name, {"recipe": {**DEFAULTS, **recipe}, "folds": {}})
        for fold in a.folds:
            if str(fold) in entry["folds"]:
                continue
            r = run_fold(recipe, videos, labels, sequences, fold, a.seed)
            entry["folds"][str(fold)] = r
            done = list(entry["folds"].values())
            for key in ("top1", "top1_views", "frame_top1"):
                if all(key in f for f in done):
                    entry[f"mean_{key}"] = sum(f[key] for f in done) / len(done)
            print(name, json.dumps(r), f"mean so far {entry['mean_top1']:.3f} / views {entry['mean_top1_views']:.3f}",
                  flush=True)  # fmt: skip
            tmp = a.out.with_suffix(".tmp")
            tmp.write_text(json.dumps(results, indent=1))
            tmp.replace(a.out)


if __name__ == "__main__":
    main()

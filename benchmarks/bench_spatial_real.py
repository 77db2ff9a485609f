"""Spatial defenses on real footage at native size: how much each damages clean frames (PSNR) and
how much accuracy it recovers on densely attacked UT-Interaction clips. Writes ``--out`` (JSON,
with the command) and prints the table.

- PSNR: every frame of each ``--frames NAME=FILE`` (frames files of uint8 ``(N, H, W, 3)``
  tensors at native size, from ``scripts/comdefend_real_frames.py``), purified whole at its own
  size, rounded to 8 bits, against the original.
- Recovery (non-adaptive: the attacker does not know the defense): the UT-Interaction clips of
  ``--sequences`` at each ``--model``'s view, PGD on every frame (l_inf ``--eps``, ``--steps``
  steps, 8-bit result) against the undefended classifier; accuracy on clean and attacked clips
  without defense and after each defense.

Defenses: ``comdefend:WEIGHTS`` for each ``--comdefend``, and the registry's ``jpeg`` (quality 75),
``median`` (3x3), ``h264`` (CRF 28). One CPU thread (``torch.set_num_threads(1)``).

    python scripts/comdefend_real_frames.py --data DATA/ut-interaction --media DATA/media --out runs/cdreal/frames
    python benchmarks/bench_spatial_real.py --data DATA/ut-interaction \\
        --frames ut=runs/cdreal/frames-test-ut.safetensors --frames bikes=runs/cdreal/frames-test-media.safetensors \\
        --sequences 9,10,19,20 --comdefend comdefend --comdefend comdefend-real --out results/spatial-real.json
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

from vidshield.attacks import PGD
from vidshield.attacks.dataset import quantize
from vidshield.defenses import create_defense
from vidshield.defenses.spatial.training import psnr
from vidshield.models import load_model
from vidshield.models.datasets import dataset_for_spec

BASELINES = ("jpeg", "median", "h264")


def _defenses(weights: list[str]) -> dict:
    out = {f"comdefend:{w}": create_defense("spatial", weights=w) for w in weights}
    return out | {name: create_defense(name) for name in BASELINES}


def frame_psnr(defense, path: Path) -> list[float]:
    """PSNR (dB) of every frame of a frames file after ``defense`` (whole frames, 8-bit output)."""
    values = []
    for _, pool in sorted(load_file(str(path)).items()):
        x = pool.permute(0, 3, 1, 2).float().div(255.0)
        values += psnr(quantize(defense(x[None])[0]), x).tolist()
    return values


def attacked_clips(model, root: str, sequences: set[int], *, eps: float, steps: int, seed: int):
    """``(clean, adversarial, labels)`` of the UT clips of ``sequences`` at ``model``'s view."""
    videos, labels = [], []
    for split in ("train", "test"):
        ds = dataset_for_spec("ut-interaction", model.input_spec, split=split, root=root)
        for i, seq in enumerate(ds.sequences):
            if seq in sequences:
                video, label = ds[i]
                videos.append(video)
                labels.append(int(label))
    clean, y = torch.stack(videos), torch.tensor(labels)
    adv = PGD(model, eps=eps, steps=steps)(clean, y, generator=torch.Generator().manual_seed(seed))
    return clean, quantize(adv), y


@torch.no_grad()
def accuracy(model, videos: torch.Tensor, labels: torch.Tensor) -> float:
    return float((model(videos).argmax(-1) == labels).float().mean())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", action="append", default=[], help="NAME=FILE frames file (repeatable)")
    parser.add_argument("--data", default=None, help="the ut-interaction folder (recovery); none: PSNR only")
    parser.add_argument("--sequences", default="9,10,19,20", help="UT sequences of the attacked clips")
    parser.add_argument("--model", action="append", default=None, help="victims (default ut-c3d-v2)")
    parser.add_argument("--comdefend", action="append", default=None, help="ComDefend weights (repeatable)")
    parser.add_argument("--eps", type=float, default=8 / 255)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    defenses = _defenses(args.comdefend or ["comdefend"])
    report = {
        "command": "python benchmarks/bench_spatial_real.py " + shlex.join(sys.argv[1:] if argv is None else argv),
        "machine": "CPU, one thread (shared 2-core machine, other jobs running)",
        "settings": {"eps": args.eps, "steps": args.steps, "seed": args.seed, "sequences": args.sequences},
        "psnr_db": {},
        "recovery": {},
    }
    start = time.perf_counter()
    for spec in args.frames:
        name, _, path = spec.partition("=")
        for label, defense in defenses.items():
            values = frame_psnr(defense, Path(path))
            report["psnr_db"].setdefault(label, {})[name] = {"mean": sum(values) / len(values), "frames": len(values)}
    if args.data:
        sequences = {int(s) for s in args.sequences.split(",")}
        for ref in args.model or ["ut-c3d-v2"]:
            model = load_model(ref)
            clean, adv, y = attacked_clips(model, args.data, sequences, eps=args.eps, steps=args.steps, seed=args.seed)
            row = {"clips": len(y), "none": {"clean": accuracy(model, clean, y), "attacked": accuracy(model, adv, y)}}
            for label, defense in defenses.items():
                row[label] = {
                    "clean": accuracy(model, quantize(defense(clean)), y),
                    "attacked": accuracy(model, quantize(defense(adv)), y),
                }
            report["recovery"][ref] = row
    report["seconds"] = round(time.perf_counter() - start, 1)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    names = [spec.partition("=")[0] for spec in args.frames]
    models = list(report["recovery"])
    head = ["defense"] + [f"PSNR {n} (dB)" for n in names] + [f"{m} clean / attacked" for m in models]
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for label in ["none", *defenses]:
        cells = [f"{report['psnr_db'][label][n]['mean']:.2f}" if label != "none" else "" for n in names]
        cells += [
            f"{report['recovery'][m][label]['clean']:.1%} / {report['recovery'][m][label]['attacked']:.1%}"
            for m in models
        ]
        print(f"| {label} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

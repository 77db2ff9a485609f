"""Attack benchmark: accuracy before/after, success rate, perturbed frames, norms, seconds per clip.

Runs every attack on synthetic test clips against the shipped models (``synthetic-lrcn`` for the
sparse attack, PGD and framing; ``synthetic-c3d`` for the dense C-DUP / 2D-DUP attack, whose
perturbation is also shown to the CNN+LSTM, as in the paper). Prints a table, or JSON with --json,
and can write the JSON to a results file.

    python benchmarks/bench_attacks.py --clips 50 [--device cuda] [--json] [--out results/attacks.json]

Paper anchors (UCF101): CNN+LSTM 78% -> 31% under the sparse attack; C3D 89% -> 59% under dense.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch


def _clips(spec, n: int, seed: int):
    from vidshield.models.datasets import dataset_for_spec

    data = dataset_for_spec("synthetic", spec, split="test", num_videos=n, seed=seed)
    items = [data[i] for i in range(n)]
    return torch.stack([v for v, _ in items]), torch.tensor([int(y) for _, y in items], dtype=torch.int64)


def _train_clips(spec, n: int, seed: int):
    from vidshield.models.datasets import dataset_for_spec

    data = dataset_for_spec("synthetic", spec, split="train", num_videos=n, seed=seed)
    items = [data[i] for i in range(n)]
    return torch.stack([v for v, _ in items]), torch.tensor([int(y) for _, y in items], dtype=torch.int64)


def _run(name, attack, model, x, y, batch: int, device, **call):
    from vidshield.attacks.base import predict

    reports, adv_all = [], []
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for i in range(0, len(y), batch):
        adv, rep = attack.attack_with_report(
            x[i : i + batch].to(device), y[i : i + batch].to(device), generator=torch.Generator().manual_seed(i), **call
        )
        reports += rep
        adv_all.append(adv.cpu())
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    n = len(reports)
    acc_after = float((predict(model, torch.cat(adv_all).to(device)).cpu() == y).float().mean())
    return {
        "attack": name,
        "clips": n,
        "accuracy_before": sum(r.pred_before == r.label for r in reports) / n,
        "accuracy_after": acc_after,
        "success_rate": sum(r.success for r in reports) / n,
        "perturbed_frames": sum(r.perturbed_frames for r in reports) / n,
        "l21": sum(r.l21 for r in reports) / n,
        "linf_255": 255 * sum(r.linf for r in reports) / n,
        "mean_abs_255": sum(r.mean_abs_255 for r in reports) / n,
        "psnr": sum(min(r.psnr, 99.0) for r in reports) / n,
        "seconds_per_clip": seconds / n,
    }, torch.cat(adv_all)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=50)
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--train-clips", type=int, default=200, help="clips to train the universal attacks on")
    parser.add_argument("--train-steps", type=int, default=300, help="C-DUP / framing training steps")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args(argv)

    from vidshield import attacks as A
    from vidshield.errors import CheckpointError
    from vidshield.models import load_model

    device = torch.device(args.device)
    try:
        lrcn = load_model("synthetic-lrcn", device=device)
        c3d = load_model("synthetic-c3d", device=device)
    except CheckpointError as e:
        print(f"bench_attacks: the shipped models are missing ({e}); train them first (see the models issue).")
        return 1
    torch.manual_seed(args.seed)
    rows = []
    x, y = _clips(lrcn.input_spec, args.clips, args.seed)
    for name, attack in [
        ("sparse (10 frames, lam 1)", A.SparseAttack(lrcn)),
        ("sparse salient (10 frames)", A.SparseAttack(lrcn, mask_mode="salient")),
        ("pgd all frames eps 8/255", A.PGD(lrcn, eps=8 / 255, steps=10)),
        ("pgd 10 frames eps 8/255", A.PGD(lrcn, eps=8 / 255, steps=10, num_frames=10)),
    ]:
        rows.append({"model": "synthetic-lrcn", **_run(name, attack, lrcn, x, y, args.batch, device)[0]})

    tx, ty = _train_clips(lrcn.input_spec, args.train_clips, args.seed)
    t0 = time.perf_counter()
    framing = A.train_framing(lrcn, tx, ty, border=4, steps=args.train_steps, seed=args.seed)
    train_s = time.perf_counter() - t0
    row = _run("framing w=4 (universal)", A.AdversarialFraming(lrcn, framing, width=4), lrcn, x, y, args.batch, device)[
        0
    ]
    rows.append({"model": "synthetic-lrcn", **row, "train_seconds": train_s})

    xc, yc = _clips(c3d.input_spec, args.clips, args.seed)
    txc, tyc = _train_clips(c3d.input_spec, args.train_clips, args.seed)
    spec = c3d.input_spec
    for label, two_d in [("C-DUP p_max 10/255", False), ("2D-DUP p_max 10/255", True)]:
        gen = A.CDUPGenerator(frames=spec.frames, height=spec.height, width=spec.width, two_d=two_d)
        t0 = time.perf_counter()
        A.train_universal(gen, c3d, txc, tyc, steps=args.train_steps, seed=args.seed)
        train_s = time.perf_counter() - t0
        attack = A.UniversalAttack(c3d, gen)
        row, _adv = _run(label, attack, c3d, xc, yc, args.batch, device)
        rows.append({"model": "synthetic-c3d", **row, "train_seconds": train_s})
        if not two_d and lrcn.input_spec.height == spec.height and lrcn.input_spec.width == spec.width:
            transfer = A.UniversalAttack(lrcn, attack.perturbation)
            rows.append(
                {
                    "model": "synthetic-lrcn (transfer)",
                    **_run(label + " from C3D", transfer, lrcn, x, y, args.batch, device)[0],
                }
            )

    result = {"device": str(device), "clips": args.clips, "torch": torch.__version__, "rows": rows}
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    cols = [
        "model",
        "attack",
        "accuracy_before",
        "accuracy_after",
        "success_rate",
        "perturbed_frames",
        "l21",
        "linf_255",
        "mean_abs_255",
        "psnr",
        "seconds_per_clip",
    ]
    print(f"device {device}, {args.clips} synthetic test clips")
    print(" | ".join(cols))
    for r in rows:
        print(" | ".join(f"{r[c]:.3f}" if isinstance(r[c], float) else str(r[c]) for c in cols))
    return 0


if __name__ == "__main__":
    sys.exit(main())

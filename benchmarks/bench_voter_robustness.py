"""How robust is a per-frame voter? Clean and attacked per-frame agreement of detection networks.

For a classifier C and per-frame networks D1, D2, ... (C's own recurrence-free path when C is a
CNN+LSTM, or networks trained for it by ``vidshield train-detector``, adversarially or not), on the
test clips: the share of D's per-frame labels equal to C's clip label and to the ground truth,
clean and under per-frame l_inf PGD against C's label (the attacker of the vote who changes every
frame; :func:`vidshield.detection.train_detector.agreement`).

    python benchmarks/bench_voter_robustness.py --classifier ut-lrcn --network ut-lrcn \\
        --network runs/ut-lrcn-robust --dataset clips --root packs/ut48 \\
        --out results/security-ut-robust-voter.json
    python benchmarks/bench_voter_robustness.py --classifier synthetic-lrcn --network synthetic-lrcn \\
        --network synthetic-lrcn-robust --clips 100 --out voters-synthetic.json

Runs on one CPU thread unless ``--threads``. Merges its rows into ``--out`` when it exists.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch


def main(argv=None) -> dict:
    from vidshield.detection.train_detector import agreement
    from vidshield.models import load_model
    from vidshield.models.datasets import dataset_for_spec

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--classifier", required=True)
    p.add_argument("--network", action="append", required=True, help="per-frame network (repeatable)")
    p.add_argument("--dataset", default="synthetic")
    p.add_argument("--root", default=None)
    p.add_argument("--clips", type=int, default=100, help="synthetic test clips")
    p.add_argument("--eps", type=float, default=8 / 255)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    classifier = load_model(args.classifier).eval()
    kw = {"num_videos": args.clips} if args.dataset == "synthetic" else {"root": args.root}
    test = dataset_for_spec(args.dataset, classifier.input_spec, split="test", seed=args.seed, **kw)
    clips = torch.stack([test[i][0] for i in range(len(test))])
    truth = torch.tensor([int(test[i][1]) for i in range(len(test))])
    out = json.loads(args.out.read_text()) if args.out.exists() else {}
    out.setdefault("rows", {})
    out["evaluation_command"] = "python benchmarks/bench_voter_robustness.py " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    for ref in args.network:
        start = time.perf_counter()
        torch.manual_seed(args.seed)
        row = agreement(
            load_model(ref).eval(), classifier, clips, labels=truth, attack_eps=args.eps, attack_steps=args.steps
        )
        row["seconds"] = round(time.perf_counter() - start, 1)
        out["rows"][ref] = row
        print(
            f"{ref}: clean frames {row['frame_accuracy']:.3f} right, {row['frame_agreement']:.3f} agree; "
            f"under PGD {row['robust_frame_accuracy']:.3f} right, clips agreeing {row['robust_clip_agreement']:.3f}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()

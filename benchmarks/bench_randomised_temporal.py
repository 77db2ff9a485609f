"""What the randomised temporal defense (issue 13's switch) costs in time, next to the plain one.

``TemporalDefense(random_grid=True, qp_range=(30, 42))`` against ``TemporalDefense()`` (QP 36) on
the same clips and masks: CPU milliseconds per clip (median of ``--repeats`` rounds, one thread),
rebuilding 4 of 16 frames (the paper's sparse budget) of synthetic 64x64 test clips. Its effect on
robust accuracy is measured by ``bench_security.py`` (``paper-random``, ``vote-robust-random``).

    python benchmarks/bench_randomised_temporal.py [--clips 12] [--repeats 7]
"""

from __future__ import annotations

import argparse
import json
import time

import torch


def main(argv=None) -> dict:
    from vidshield.data.synthetic import SyntheticActions
    from vidshield.defenses import create_defense
    from vidshield.eval.security import RANDOM_TEMPORAL

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clips", type=int, default=12)
    p.add_argument("--repeats", type=int, default=7)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    data = SyntheticActions(args.clips, num_classes=10, frames=16, height=64, width=64, seed=5)
    clips = torch.stack([data[i][0] for i in range(args.clips)])
    mask = torch.zeros(args.clips, 16, dtype=torch.bool)
    mask[:, [2, 6, 9, 13]] = True
    report = {"clips": args.clips, "frames_rebuilt_per_clip": 4, "size": [64, 64]}
    for name, defense in (
        ("plain", create_defense("temporal")),
        ("random", create_defense("temporal", **RANDOM_TEMPORAL)),
    ):
        defense(clips, polluted=mask, generator=torch.Generator().manual_seed(0))  # warm-up (numba)
        rounds = []
        for r in range(args.repeats):
            start = time.process_time()
            defense(clips, polluted=mask, generator=torch.Generator().manual_seed(r))
            rounds.append(time.process_time() - start)
        report[f"{name}_cpu_ms_per_clip"] = round(sorted(rounds)[len(rounds) // 2] / args.clips * 1000, 3)
    report["random_over_plain"] = round(report["random_cpu_ms_per_clip"] / report["plain_cpu_ms_per_clip"], 2)
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    main()

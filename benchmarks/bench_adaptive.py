"""Adaptive attacks: PGD through each defense with BPDA, next to the usual non-adaptive evaluation.

The tables of the reproduction attack the bare classifier and then defend (non-adaptive). An
attacker who knows the defense attacks ``model(defense(x))`` instead; the defenses are not
differentiable, so the gradient goes through a surrogate (BPDA, Athalye et al. 2018): identity
for the codecs and filters, straight-through for ComDefend's binarisation, and for the temporal
defense either identity or its motion-compensated prediction (both are tried; the lower accuracy
counts). Victim: the shipped ``synthetic-lrcn`` on synthetic test clips. Threats, l_inf PGD:

* sparse: 4 spread frames of 16, eps 16/255 (the paper's attack is sparse and strong per frame);
  the temporal defense rebuilds exactly those frames (a perfect detector: the defender's best case);
* dense: every frame, eps 8/255 (no clean frame is left for the temporal defense).

    python benchmarks/bench_adaptive.py --clips 12 --steps 10 [--json] [--out results/adaptive-synthetic.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from torch import nn


class Defended(nn.Module):
    """``model(purify(x))``: the classifier behind a purification step (for the attack's gradient)."""

    def __init__(self, model: nn.Module, purify) -> None:
        super().__init__()
        self.model, self.purify = model, purify

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(self.purify(x))


def main(argv=None) -> dict:
    from vidshield.attacks.pgd import pgd_attack
    from vidshield.attacks.sparse import spread_frames
    from vidshield.defenses import create_defense
    from vidshield.models import load_model, predict_labels
    from vidshield.models.datasets import dataset_for_spec

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clips", type=int, default=12)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    torch.manual_seed(args.seed)
    model = load_model("synthetic-lrcn").eval()
    for q in model.parameters():
        q.requires_grad_(False)
    data = dataset_for_spec("synthetic", model.input_spec, split="test", num_videos=args.clips, seed=args.seed)
    x = torch.stack([data[i][0] for i in range(args.clips)])
    y = torch.tensor([int(data[i][1]) for i in range(args.clips)])
    n, t = x.shape[:2]
    sparse_mask = torch.zeros(n, t, dtype=torch.bool)
    sparse_mask[:, spread_frames(t, 4)] = True

    def accuracy(video: torch.Tensor) -> float:
        preds = torch.tensor(predict_labels(model, video, batch_size=video.shape[0]))
        return round((preds == y).float().mean().item(), 4)

    spatial, h264, jpeg, median = (create_defense(name) for name in ("spatial", "h264", "jpeg", "median"))
    temporal_id = create_defense("temporal", surrogate="identity")
    temporal_mc = create_defense("temporal", surrogate="prediction")
    # name -> (defense forward, [BPDA variants]); the temporal defense rebuilds the sparse frames
    defenses = {
        "none": (lambda v: v, [lambda v: v]),
        "temporal": (
            lambda v: temporal_id(v, polluted=sparse_mask),
            [lambda v: temporal_id.bpda(v, polluted=sparse_mask), lambda v: temporal_mc.bpda(v, polluted=sparse_mask)],
        ),
        "comdefend": (spatial, [spatial.bpda]),
        "h264_crf28": (h264, [h264.bpda]),
        "jpeg75": (jpeg, [jpeg.bpda]),
        "median3": (median, [median.bpda]),
    }
    threats = {"sparse": (sparse_mask, 16 / 255), "dense": (None, 8 / 255)}
    report = {"clips": n, "steps": args.steps, "victim": "synthetic-lrcn", "clean_accuracy": accuracy(x), "threats": {}}
    for threat, (mask, eps) in threats.items():
        start = time.perf_counter()
        gen = torch.Generator().manual_seed(args.seed)
        plain = pgd_attack(model, x, y, eps=eps, steps=args.steps, mask=mask, generator=gen)
        rows = {"no_defense_after_attack": accuracy(plain)}
        for name, (defend, surrogates) in defenses.items():
            if name == "none" or (name == "temporal" and threat == "dense"):
                continue
            adaptive = []
            for bpda in surrogates:
                gen = torch.Generator().manual_seed(args.seed)
                adv = pgd_attack(Defended(model, bpda), x, y, eps=eps, steps=args.steps, mask=mask, generator=gen)
                adaptive.append(accuracy(defend(adv)))
            rows[name] = {
                "clean": accuracy(defend(x)),
                "non_adaptive": accuracy(defend(plain)),
                "adaptive": min(adaptive),
                "adaptive_per_surrogate": adaptive,
            }
            print(f"{threat} {name}: {rows[name]}", flush=True)
        rows["seconds"] = round(time.perf_counter() - start, 1)
        report["threats"][threat] = {"eps_255": round(eps * 255, 1), "frames": 4 if mask is not None else t, **rows}
    text = json.dumps(report, indent=2)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    if args.json:
        print(text)
    return report


if __name__ == "__main__":
    main()

"""Temporal defense accuracy: which frames it rebuilds decides what it recovers.

Reads a ``vidshield reproduce`` output folder (its clean and sparse clip sets, detections and
config) and reports the CNN+LSTM's accuracy on the clean and the sparse-attacked clips with the
temporal defense rebuilding

* ``exceptions``: the detector's exception frames (the paper; Table 3's "temporal" column),
* ``minority``: frames whose label differs from the clip's majority label,
* ``exceptions+ends``: the exception frames plus the one-sided exceptions at the clip's ends
  (beyond the paper; :func:`vidshield.routing.polluted_frames`),
* ``true_frames``: the frames the attack actually perturbed (known here: the clean clip is at
  hand), which separates the defense's own limit from the detector's misses,

at several QPs, next to no defense and H.264 re-encoding of the whole clip (CRF 28), plus the
detector's recall and precision of the perturbed frames.

    .venv/bin/python benchmarks/bench_temporal_accuracy.py results/ut-interaction-baselines [--qps 30,36,42]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from vidshield.defenses import create_defense
from vidshield.io import load_clips
from vidshield.models import load_model, predict_labels
from vidshield.routing import POLLUTED_RULES, polluted_mask


def accuracy(model, videos: torch.Tensor, labels: torch.Tensor, batch: int = 16) -> float:
    preds = torch.tensor(predict_labels(model, videos, batch_size=batch))
    return round((preds == labels).float().mean().item(), 4)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("results", type=Path, help="a reproduce --out folder with sets/clean and sets/sparse")
    p.add_argument("--qps", default="30,36,42")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    cfg = json.loads((args.results / "config.json").read_text())
    detections = json.loads((args.results / "detections.json").read_text())
    sets = {}
    for name in ("clean", "sparse"):
        path = args.results / "sets" / f"{name}.safetensors"
        if not path.exists():
            raise SystemExit(f"{path} not found: run `vidshield reproduce --out {args.results}` first")
        videos, labels, _ = load_clips(path)  # float [0, 1]
        sets[name] = (videos, labels)
    (clean, labels), (sparse, sparse_labels) = sets["clean"], sets["sparse"]
    if not torch.equal(labels, sparse_labels):
        raise SystemExit("the clean and sparse sets hold different clips")
    model = load_model(cfg["lrcn"]).eval()
    t = clean.shape[1]
    perturbed = (sparse != clean).flatten(2).any(2)  # (N, T) frames the attack changed
    masks = {
        name: {rule: polluted_mask(detections[name], rule, t) for rule in POLLUTED_RULES}
        for name in ("clean", "sparse")
    }
    masks["sparse"]["true_frames"] = perturbed
    masks["clean"]["true_frames"] = torch.zeros_like(perturbed)
    exc, ends = masks["sparse"]["exceptions"], masks["sparse"]["exceptions+ends"]
    report = {
        "results": str(args.results),
        "model": cfg["lrcn"],
        "clips": len(labels),
        "attacked_clips": int(perturbed.any(1).sum()),
        "perturbed_frames_per_attacked_clip": round(perturbed.sum().item() / max(int(perturbed.any(1).sum()), 1), 2),
        "detector_recall_of_perturbed_frames": round(
            (exc & perturbed).sum().item() / max(perturbed.sum().item(), 1), 3
        ),
        "detector_precision": round((exc & perturbed).sum().item() / max(exc.sum().item(), 1), 3),
        "with_ends_recall": round((ends & perturbed).sum().item() / max(perturbed.sum().item(), 1), 3),
        "with_ends_precision": round((ends & perturbed).sum().item() / max(ends.sum().item(), 1), 3),
        "clean_frames_flagged": {rule: int(m.sum()) for rule, m in masks["clean"].items() if rule != "true_frames"},
        "accuracy": {},
    }
    h264 = create_defense("h264")
    for name, (videos, _) in sets.items():
        row = {"none": accuracy(model, videos, labels), "h264_crf28": accuracy(model, h264(videos), labels)}
        for qp in (int(q) for q in args.qps.split(",")):
            defense = create_defense("temporal", qp=qp, block=cfg["block"], search=cfg["search"])
            for rule, mask in masks[name].items():
                defended = videos.clone()
                rows = mask.any(1) & ~mask.all(1)
                if bool(rows.any()):
                    defended[rows] = defense(videos[rows], polluted=mask[rows])
                row[f"{rule}_qp{qp}"] = accuracy(model, defended, labels)
        report["accuracy"][name] = row
    print(json.dumps(report, indent=2) if args.json else "\n".join(f"{k}: {json.dumps(v)}" for k, v in report.items()))
    return report


if __name__ == "__main__":
    main()

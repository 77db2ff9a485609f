"""A distilled detection network for a classifier vs the CNN+LSTM's own recurrence-free path.

For the classifier C (e.g. ``synthetic-c3d``) and a detection network D trained for it
(``vidshield train-detector --classifier C``), on test clips C classifies correctly:

- agreement: share of D's per-frame labels equal to C's clip label (clean clips);
- detection AUC: clean clips vs the clips the sparse attack (aimed at C: 4 spread frames of 16,
  100 Adam steps, the paper's settings, quantised to 8 bits) fooled, on alpha and js_divergence.

Rows: D for C; the shipped CNN+LSTM L (``synthetic-lrcn``) used as C's detector (today's default
pairing, another label space); and L protecting itself (the attack aimed at L, the paper's setting).

    python benchmarks/bench_detector.py --classifier synthetic-c3d --detector runs/det-synthetic-c3d \\
        --baseline synthetic-lrcn --clips 60 --out results/detector-synthetic.json
    python benchmarks/bench_detector.py --classifier ut-c3d-v2 --detector runs/det-ut-c3d \\
        --baseline ut-lrcn-v2 --dataset clips --root packs/ut48 --out results/detector-ut-interaction.json

UT-Interaction (``--dataset clips`` packed by ``vidshield pack --dataset ut-interaction``, or
``--dataset ut-interaction``): the 60 test clips of set2; ``--clips`` counts synthetic clips only.

Runs on one CPU thread (``torch.set_num_threads(1)``) unless ``--threads``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import torch


def _quantise(video: torch.Tensor) -> torch.Tensor:
    return video.mul(255).round().div(255).clamp(0, 1)


def _attack(model, clips, labels, args):
    from vidshield.attacks import create_attack
    from vidshield.models import predict_labels

    attack = create_attack("sparse", model, num_frames=args.sparse_frames, steps=args.steps, lam=1.0, lr=1e-3)
    parts = []
    for i in range(0, clips.shape[0], args.batch_size):
        parts.append(_quantise(attack(clips[i : i + args.batch_size], labels[i : i + args.batch_size])))
    adv = torch.cat(parts)
    fooled = torch.tensor(predict_labels(model, adv, batch_size=args.batch_size)) != labels
    return adv, fooled


@torch.no_grad()
def _row(detector_model, classifier, clean, adv, labels):
    from sklearn.metrics import roc_auc_score

    from vidshield.detection import TemporalConsistencyDetector
    from vidshield.detection.train_detector import agreement
    from vidshield.models.adapter import resample_video

    det = TemporalConsistencyDetector(detector_model)
    view = lambda v: resample_video(v, detector_model.input_spec, time=False)  # noqa: E731
    d_clean, d_adv = det.detect(view(clean)), det.detect(view(adv))
    y = [0] * len(d_clean) + [1] * len(d_adv)
    out = {"clean_clips": len(d_clean), "attacked_clips": len(d_adv)}
    out |= {f"agreement_{k}": v for k, v in agreement(detector_model, classifier, clean).items() if k != "clips"}
    for name in ("alpha", "js_divergence"):
        s = [d.scores[name] for d in d_clean] + [d.scores[name] for d in d_adv]
        out[f"auc_{name}"] = float(roc_auc_score(y, s))
    out["mean_alpha_clean"] = sum(d.alpha for d in d_clean) / len(d_clean)
    out["mean_alpha_attacked"] = sum(d.alpha for d in d_adv) / len(d_adv)
    # a clip's label-flip detection at the paper's threshold (gamma1 = 0.175)
    out["flagged_at_paper_gamma1"] = {
        "clean": sum(d.verdict != "clean" for d in d_clean) / len(d_clean),
        "attacked": sum(d.verdict != "clean" for d in d_adv) / len(d_adv),
    }
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classifier", default="synthetic-c3d")
    parser.add_argument("--input-spec", default=None)
    parser.add_argument("--detector", required=True, help="detection network trained for --classifier")
    parser.add_argument("--baseline", default="synthetic-lrcn", help="a CNN+LSTM with its own per-frame path")
    parser.add_argument("--dataset", default="synthetic")
    parser.add_argument("--root", default=None)
    parser.add_argument("--clips", type=int, default=60, help="synthetic: test clips (else the test split)")
    parser.add_argument("--sparse-frames", type=int, default=4)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    from vidshield.models import load_model, predict_labels
    from vidshield.models.adapter import load_classifier
    from vidshield.models.datasets import dataset_for_spec

    started = time.perf_counter()
    classifier = load_classifier(args.classifier, input_spec=args.input_spec)
    detector = load_model(args.detector)
    baseline = load_model(args.baseline)
    count = args.clips if args.dataset == "synthetic" else None
    data = dataset_for_spec(
        args.dataset, classifier.input_spec, split="test", root=args.root, num_videos=count, seed=args.seed
    )
    items = [data[i] for i in range(len(data))]
    clips = torch.stack([v for v, _ in items])
    labels = torch.tensor([int(y) for _, y in items])
    result = {
        "command": "python "
        + " ".join(["benchmarks/bench_detector.py", *(argv if argv is not None else sys.argv[1:])]),
        "classifier": args.classifier,
        "detector": args.detector,
        "detector_training": detector.metadata.get("command"),
        "baseline": args.baseline,
        "dataset": args.dataset,
        "root": args.root,
        "test_clips": len(items),
        "threads": args.threads,
        "attack": {"name": "sparse l2,1 (Wei et al.)", "frames": args.sparse_frames, "steps": args.steps, "lr": 1e-3},
    }
    rows = {}
    for name, victim, dets in (
        ("classifier", classifier, {"distilled": detector, "baseline_lrcn": baseline}),
        ("baseline_self", baseline, {"baseline_lrcn_own_path": baseline}),
    ):
        keep = torch.tensor(predict_labels(victim, clips, batch_size=args.batch_size)) == labels
        clean, y = clips[keep], labels[keep]
        adv, fooled = _attack(victim, clean, y, args)
        result[f"victim_{name}"] = {
            "correct_clips": int(keep.sum()),
            "fooled_by_sparse_attack": int(fooled.sum()),
        }
        for row, model in dets.items():
            rows[row] = {"attack_aimed_at": args.classifier if name == "classifier" else args.baseline}
            rows[row] |= _row(model, victim, clean, adv[fooled], y)
    result["rows"] = rows
    result["seconds"] = round(time.perf_counter() - started, 1)
    text = json.dumps(result, indent=2)
    if args.out:
        from vidshield.utils import atomic_write_json

        atomic_write_json(args.out, result)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

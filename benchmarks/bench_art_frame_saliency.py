"""Peer check: IBM ART's FrameSaliencyAttack (with its PGD inside) vs our SparseAttack, at the
same l_inf budget, on the CNN+LSTM: success rate and number of perturbed frames.

ART is a benchmark-only dependency (the optional extra ``art``):
``.venv/bin/pip install adversarial-robustness-toolbox``.

    python benchmarks/bench_art_frame_saliency.py --clips 20 --eps 0.03
    python benchmarks/bench_art_frame_saliency.py --tiny      # no shipped model: train test-lrcn briefly

Our model is wrapped as an ART ``PyTorchClassifier`` with input shape (T, 3, H, W) and
clip values (0, 1); ``FrameSaliencyAttack(method="iterative_saliency", frame_index=1)`` perturbs
frames in order of gradient saliency until the label flips.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F


def _data(spec, n, split, seed, num_classes=None):
    from vidshield.data import SyntheticActions, synthetic_split_seed

    data = SyntheticActions(
        n,
        num_classes=num_classes or 10,
        frames=spec.frames,
        height=spec.height,
        width=spec.width,
        seed=synthetic_split_seed(seed, split),
    )
    items = [data[i] for i in range(n)]
    return torch.stack([v for v, _ in items]), torch.tensor([int(y) for _, y in items], dtype=torch.int64)


def _tiny_model(seed: int):
    from vidshield.models import create_model

    torch.manual_seed(seed)
    model = create_model("test-lrcn", num_classes=3, input_size=(16, 32, 32))
    x, y = _data(model.input_spec, 96, "train", seed, num_classes=3)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(150):
        idx = torch.randint(0, len(y), (16,))
        loss = F.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval(), 3


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="synthetic-lrcn")
    parser.add_argument("--tiny", action="store_true", help="train a tiny test-lrcn instead of loading --model")
    parser.add_argument("--clips", type=int, default=20)
    parser.add_argument("--eps", type=float, default=8 / 255)
    parser.add_argument("--pgd-steps", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--gamma1", type=float, default=0.175, help="detector thresholds for the hold-out check")
    parser.add_argument("--gamma2", type=float, default=0.3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    try:
        from art.attacks.evasion import FrameSaliencyAttack, ProjectedGradientDescent
        from art.estimators.classification import PyTorchClassifier
    except ImportError:
        print(
            "bench_art_frame_saliency: ART is not installed; install the optional extra with "
            "`.venv/bin/pip install adversarial-robustness-toolbox` (benchmark only)."
        )
        return 1

    from vidshield.attacks import SparseAttack
    from vidshield.attacks.base import predict
    from vidshield.errors import CheckpointError
    from vidshield.models import load_model

    if args.tiny:
        model, num_classes = _tiny_model(args.seed)
    else:
        try:
            model = load_model(args.model, device="cpu")
        except CheckpointError as e:
            print(f"bench_art_frame_saliency: {e}; run with --tiny to use a briefly trained test-lrcn")
            return 1
        num_classes = model.num_classes
    spec = model.input_spec
    x, y = _data(spec, args.clips, "test", args.seed, num_classes=num_classes)
    keep = predict(model, x) == y
    x, y = x[keep], y[keep]
    n = len(y)
    if n == 0:
        print("bench_art_frame_saliency: the model gets no test clip right")
        return 1

    classifier = PyTorchClassifier(
        model=model,
        loss=torch.nn.CrossEntropyLoss(),
        input_shape=(spec.frames, 3, spec.height, spec.width),
        nb_classes=num_classes,
        clip_values=(0.0, 1.0),
        device_type="cpu",
    )
    pgd = ProjectedGradientDescent(
        classifier, eps=args.eps, eps_step=args.eps / 4, max_iter=args.pgd_steps, verbose=False
    )
    art_attack = FrameSaliencyAttack(classifier, pgd, method="iterative_saliency", frame_index=1, verbose=False)
    t0 = time.perf_counter()
    art_adv = torch.from_numpy(art_attack.generate(x.numpy(), y=np.eye(num_classes)[y.numpy()]).astype(np.float32))
    art_s = (time.perf_counter() - t0) / n
    art_pred = predict(model, art_adv)
    art_frames = ((art_adv - x).flatten(2).abs().amax(2) > 1e-8).sum(1).float()

    ours = {}
    for label, k in [
        ("sparse k=T/4 spread", max(1, spec.frames // 4)),
        ("sparse k=T/4 salient", max(1, spec.frames // 4)),
    ]:
        mode = "salient" if "salient" in label else "spread"
        attack = SparseAttack(model, num_frames=k, mask_mode=mode, eps=args.eps, lr=args.eps / 4, steps=100)
        t0 = time.perf_counter()
        _adv, reports = attack.attack_with_report(x, y)
        ours[label] = {
            "success_rate": sum(r.success for r in reports) / n,
            "perturbed_frames": sum(r.perturbed_frames for r in reports) / n,
            "linf_255": 255 * max(r.linf for r in reports),
            "seconds_per_clip": (time.perf_counter() - t0) / n,
        }
    # Detection on the peer's attack, which the thresholds were not calibrated on (issue: detection).
    from sklearn.metrics import roc_auc_score

    from vidshield.detection import TemporalConsistencyDetector

    detector = TemporalConsistencyDetector(model, gamma1=args.gamma1, gamma2=args.gamma2)
    fooled = art_pred != y
    clean_det, art_det = detector.detect(x), detector.detect(art_adv[fooled]) if bool(fooled.any()) else []
    detection = {"gamma1": args.gamma1, "gamma2": args.gamma2, "fooled_clips": int(fooled.sum())}
    if art_det:
        alphas_clean = [d.alpha for d in clean_det]
        alphas_art = [d.alpha for d in art_det]
        detection |= {
            "verdicts_clean": {v: sum(d.verdict == v for d in clean_det) for v in ("clean", "sparse", "dense")},
            "verdicts_art": {v: sum(d.verdict == v for d in art_det) for v in ("clean", "sparse", "dense")},
            "detection_rate": sum(d.verdict != "clean" for d in art_det) / len(art_det),
            "false_positive_rate": sum(d.verdict != "clean" for d in clean_det) / len(clean_det),
            "alpha_mean_clean": float(np.mean(alphas_clean)),
            "alpha_mean_art": float(np.mean(alphas_art)),
            "auc_alpha": float(
                roc_auc_score([0] * len(alphas_clean) + [1] * len(alphas_art), alphas_clean + alphas_art)
            ),
            "auc_js_divergence": float(
                roc_auc_score(
                    [0] * len(clean_det) + [1] * len(art_det),
                    [d.scores["js_divergence"] for d in clean_det] + [d.scores["js_divergence"] for d in art_det],
                )
            ),
        }
    result = {
        "model": "tiny test-lrcn" if args.tiny else args.model,
        "clips_correct": n,
        "frames": spec.frames,
        "eps_255": args.eps * 255,
        "art_frame_saliency_pgd": {
            "success_rate": float((art_pred != y).float().mean()),
            "perturbed_frames": float(art_frames.mean()),
            "linf_255": 255 * float((art_adv - x).abs().max()),
            "seconds_per_clip": art_s,
        },
        **ours,
        "detection_of_art_attack": detection,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(
        f"{result['model']}: {n} correctly classified {spec.frames}-frame clips, l_inf budget {args.eps * 255:.1f}/255"
    )
    print("method | success rate | perturbed frames | l_inf (/255) | s/clip")
    for name in ["art_frame_saliency_pgd", *ours]:
        r = result[name]
        print(
            f"{name} | {r['success_rate']:.3f} | {r['perturbed_frames']:.2f} | {r['linf_255']:.2f} | {r['seconds_per_clip']:.3f}"
        )
    print("detection of the ART attack (thresholds not calibrated on it):", json.dumps(detection))
    return 0


if __name__ == "__main__":
    sys.exit(main())

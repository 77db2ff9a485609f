"""Security evaluation of the whole pipeline against adaptive attacks (issue 13).

Every attack knows the detector, the routing and the defenses (see
``vidshield.attacks.adaptive``); success is judged by the real pipeline on the 8-bit result.
Writes ``--out`` (JSON, one entry per case, resumable: done cases are skipped), a loss-curve PNG
next to it and prints the markdown table (per-clip worst case over the attacks).

    # reduced (CPU, minutes per case): few clips, few steps, the cheap pipelines
    python benchmarks/bench_security.py --mode reduced --out results/security-synthetic.json
    # full (GPU): 48 clips, 100 steps, 2 restarts, every pipeline, the budget sweep
    python benchmarks/bench_security.py --mode full --device cuda --out results/security-synthetic.json
    # UT-Interaction (decoded test clips; see README "Data")
    python benchmarks/bench_security.py --dataset ut-interaction --model ut-lrcn --root packs/ut ...
    # the budget sweep (2/4/8/16 / 255 on 1/2/4/8/every frame): --grid runs every listed
    # pipeline x threat x attack instead of filtering the mode's plan; "sweep" names the 20 threats
    python benchmarks/bench_security.py --grid --only none,vote-robust --threats sweep,eps32-all \
        --attacks pgd --robust-detector synthetic-lrcn-robust --out results/security-sweep.json
    # the randomised temporal defense (paper-random, vote-robust-random; the attacks use EOT)
    python benchmarks/bench_security.py --grid --only paper-random --threats sparse --attacks pgd,adaptive-run \
        --out results/security-synthetic-random.json
    # the adversarially trained detection network (paper-robust, vote-robust columns)
    python benchmarks/bench_security.py --mode reduced --robust-detector synthetic-lrcn-robust \
        --only vote-robust,paper-robust --out results/security-synthetic-robust.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

#: (pipeline, threat, attack) per mode. "reduced" keeps ComDefend (4 s per clip and step on one
#: CPU thread) out of the attack loop except for a few SPSA/transfer checks.
_MAIN_SPARSE = ["pgd", "pgd-run", "adaptive", "adaptive-run", "consistent", "transfer"]
_MAIN_DENSE = ["pgd", "adaptive", "consistent", "transfer"]
_SWEEP = [f"eps{e}-all" for e in (2, 4, 16)] + [f"eps16-f{k}" for k in (1, 2, 8)]
#: The hardened vote (robust detection network): the dense goal first, then the large-budget
#: sanity check (the attack must reach 100 % success), the sparse budget, SPSA, the paper's routing.
_ROBUST = (
    [("vote-robust", "dense", a) for a in ("pgd", "adaptive")]
    + [("vote-robust", "eps32-all", "pgd"), ("vote-robust", "eps64-all", "pgd")]
    + [("vote-robust", "dense", a) for a in ("consistent", "spsa", "transfer")]
    + [("paper-robust", "dense", "pgd")]
    + [("vote-robust", "sparse", a) for a in ("adaptive-run", "pgd", "consistent", "adaptive", "pgd-run", "transfer")]
    + [("vote-robust", "sparse", "spsa")]
    + [("paper-robust", "sparse", a) for a in ("adaptive-run", "pgd")]
)


def plan(mode: str, robust: bool = False) -> list[tuple[str, str, str]]:
    """The cases of a mode; ``robust``: also those of the robust detection network's columns."""
    cases = [("none", t, "pgd") for t in ["sparse", "dense", *_SWEEP]]
    if mode == "reduced":
        cases = [("none", t, "pgd") for t in ("sparse", "dense", "eps16-all")]
        cases += [("paper", "sparse", a) for a in ("pgd", "adaptive-run", "consistent", "transfer")]
        cases += [("paper", "dense", a) for a in ("pgd", "consistent", "transfer")]
        cases += [("vote", "sparse", a) for a in ("pgd", "adaptive-run", "transfer")]
        cases += [("vote", "dense", "pgd"), ("paper", "sparse", "spsa")]
        return cases + (_ROBUST if robust else [])
    cases += [("none", "sparse", "pgd-run")]
    for p in ("paper", "squeeze", "vote", "vote+squeeze"):
        cases += [(p, "sparse", a) for a in _MAIN_SPARSE] + [(p, "dense", a) for a in _MAIN_DENSE]
        cases += [(p, "sparse", "spsa"), (p, "dense", "spsa")]
    cases += [("temporal", "sparse", a) for a in ("pgd", "pgd-run", "adaptive-run", "transfer")]
    cases += [("spatial", t, a) for t in ("sparse", "dense") for a in ("pgd", "transfer")]
    cases += [("vote+squeeze", t, "adaptive") for t in _SWEEP]
    return cases + (_ROBUST if robust else [])


PIPELINE_NAMES = ("none", "temporal", "spatial", "paper", "squeeze", "vote", "vote+squeeze", "paper-random")
ROBUST_NAMES = ("paper-robust", "vote-robust", "vote-robust+squeeze", "vote-robust-random")

MODES = {
    "reduced": {"clips": 12, "steps": 40, "restarts": 2, "spsa_clips": 4, "spsa_steps": 10},
    "full": {"clips": 48, "steps": 100, "restarts": 2, "spsa_clips": 8, "spsa_steps": 50},
}


def load_clips(dataset: str, model, n: int, root: str | None, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` test clips on the 8-bit grid and their labels (synthetic: a fixed seed; others: ``n``
    clips evenly spaced over the test split, so every class is represented)."""
    from vidshield.models.datasets import dataset_for_spec

    kw = {"num_videos": n} if dataset == "synthetic" else {"root": root}
    data = dataset_for_spec(dataset, model.input_spec, split="test", seed=seed, **kw)
    n = min(n, len(data))
    items = [data[int(i)] for i in torch.linspace(0, len(data) - 1, n).round().long()]
    x = torch.stack([v for v, _ in items])
    return torch.round(x * 255) / 255, torch.tensor([int(y) for _, y in items])


def main(argv=None) -> dict:
    from vidshield.eval.security import SWEEP_THREATS, plot_curves, plot_sweep, run_cases, summary_table, sweep_table
    from vidshield.models import load_model

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mode", choices=sorted(MODES), default="reduced")
    p.add_argument("--dataset", default="synthetic")
    p.add_argument("--model", default="synthetic-lrcn")
    p.add_argument("--root", default=None)
    p.add_argument("--clips", type=int, default=None)
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--restarts", type=int, default=None)
    p.add_argument("--spsa-clips", type=int, default=None, help="clips SPSA attacks (the first ones)")
    p.add_argument("--spsa-steps", type=int, default=None)
    p.add_argument("--only", default=None, help="comma-separated pipelines to run (default: the mode's plan)")
    p.add_argument("--threats", default=None, help="comma-separated threats to run (default: the mode's plan)")
    p.add_argument("--attacks", default=None, help="comma-separated attacks to run (default: the mode's plan)")
    p.add_argument(
        "--robust-detector",
        default=None,
        help="an adversarially trained detection network for --model (paper-robust, vote-robust columns)",
    )
    p.add_argument(
        "--grid",
        action="store_true",
        help="run every --only pipeline x --threats threat x --attacks attack (all three needed) "
        "instead of filtering the mode's plan",
    )
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)  # the randomised defenses' draws (the attacks' starts have their own generator)
    cfg = dict(MODES[args.mode])
    for k in ("clips", "steps", "restarts", "spsa_clips", "spsa_steps"):
        if getattr(args, k) is not None:
            cfg[k] = getattr(args, k)
    model = load_model(args.model, device=args.device).eval()
    networks = {}
    if args.robust_detector:
        from vidshield.detection.train_detector import check_pairing

        networks["robust"] = load_model(args.robust_detector, device=args.device).eval()
        check_pairing(networks["robust"], model)  # trained for this classifier
        cfg["robust_detector"] = args.robust_detector
    x, y = load_clips(args.dataset, model, cfg["clips"], args.root, args.seed)
    threats = None
    if args.threats:
        threats = [t for name in args.threats.split(",") for t in (SWEEP_THREATS if name == "sweep" else [name])]
    if args.grid:
        if not (args.only and threats and args.attacks):
            p.error("--grid needs --only, --threats and --attacks")
        cases = [(q, t, a) for q in args.only.split(",") for t in threats for a in args.attacks.split(",")]
    else:
        cases = plan(args.mode, robust=bool(networks))
        if args.only:
            keep = set(args.only.split(","))
            cases = [c for c in cases if c[0] in keep]
        if threats:
            cases = [c for c in cases if c[1] in set(threats)]
        if args.attacks:
            keep = set(args.attacks.split(","))
            cases = [c for c in cases if c[2] in keep]
    meta = {
        "dataset": args.dataset,
        "model": args.model,
        "mode": args.mode,
        **cfg,
        "seed": args.seed,
        "device": args.device,
        "command": "python benchmarks/bench_security.py " + " ".join(sys.argv[1:] if argv is None else argv),
    }
    results = run_cases(
        model,
        x,
        y,
        cases,
        args.out,
        steps=cfg["steps"],
        restarts=cfg["restarts"],
        spsa_steps=cfg["spsa_steps"],
        spsa_clips=cfg["spsa_clips"],
        seed=args.seed,
        clean_pipelines=(PIPELINE_NAMES if not args.only else ("none", "paper", "vote"))
        + (ROBUST_NAMES if networks else ()),
        networks=networks,
        meta=meta,
    )
    plot_curves(results, args.out.with_suffix(".curves.png"))
    pipes = [q for q in PIPELINE_NAMES + ROBUST_NAMES if any(k.startswith(q + "/") for k in results["cases"])]
    plot_sweep(results, pipes, args.out.with_suffix(".sweep.png"))
    ran = {r["threat"] for k, r in results["cases"].items() if not k.startswith("clean/")}
    order = ["sparse", "dense", *SWEEP_THREATS, "eps32-all", "eps64-all"]
    print(summary_table(results, pipes, [t for t in order if t in ran]))
    if ran & set(SWEEP_THREATS):
        print(sweep_table(results, pipes))
    return results


if __name__ == "__main__":
    main()

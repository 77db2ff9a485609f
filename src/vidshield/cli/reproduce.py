"""``vidshield reproduce``: the paper's Tables 1-4 and Figures 2, 3, 4, 7 end to end."""

from __future__ import annotations

from pathlib import Path

import click

from vidshield.cli.options import (
    command_line,
    device_option,
    echo_json,
    json_option,
    qp_option,
    resolve_device,
    seed_option,
)
from vidshield.utils import progress_bar


def print_summary(results: dict, out: Path) -> None:
    """A small Table 3 / Table 4 on the terminal."""
    from rich.console import Console
    from rich.table import Table

    def pct(x):
        return "n/a" if x is None or x != x else f"{100 * x:.0f}%"

    paper = results["paper"]
    t3 = Table(title="Table 3: accuracy (ours / paper)")
    for col in ("model", "input", "no defense", "spatial", "temporal"):
        t3.add_column(col, justify="right" if col not in ("model", "input") else "left")
    for m, name in (("lrcn", "CNN+LSTM"), ("c3d", "C3D")):
        for s, row in results["table3"][m].items():
            p = paper["table3"][m][s]
            t3.add_row(name, s, *(f"{pct(row[d])} / {pct(p[d])}" for d in ("none", "spatial", "temporal")))
    t4r = results["table4"]
    c = t4r["counts"]
    t4 = Table(title=f"Table 4: mixed set ({c['clean']} clean + {c['sparse']} sparse + {c['dense']} dense)")
    t4.add_column("strategy")
    t4.add_column("ours", justify="right")
    t4.add_column("paper", justify="right")
    for key, name in (
        ("no_defense", "no defense"),
        ("spatial_only", "spatial only"),
        ("temporal_only", "temporal only"),
        ("combined", "detect + route (paper thresholds)"),
        ("combined_calibrated", "detect + route (calibrated)"),
        ("combined_minority", "detect + route, minority rule (beyond the paper)"),
        ("combined_squeeze", "detect + route + squeeze check (beyond the paper)"),
    ):
        if key in t4r:
            t4.add_row(name, pct(t4r[key]), pct(paper["table4"].get(key)) if key in paper["table4"] else "")
    console = Console()
    console.print(t3)
    console.print(t4)
    console.print(f"Report: {out / 'report.md'}   figures: {out / 'figures'}   numbers: {out / 'results.json'}")


@click.command("reproduce")
@click.option(
    "--dataset", type=click.Choice(["synthetic", "ut-interaction", "ucf101"]), default="synthetic", show_default=True
)
@click.option(
    "--root",
    type=click.Path(path_type=Path),
    default=None,
    help="Data root (default $VIDSHIELD_DATA or ../shared/data), or a folder of clip sets from "
    "`vidshield pack`; not used for synthetic.",
)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Output folder (resumable).")
@click.option("--lrcn", default=None, help="CNN+LSTM: shipped name or checkpoint [default: the data set's].")
@click.option("--c3d", default=None, help="C3D: shipped name or checkpoint [default: the data set's].")
@click.option("--comdefend", default="comdefend", show_default=True, help="ComDefend weights (shipped name or path).")
@click.option("--num-test", type=click.IntRange(min=2), default=None, help="Test clips [default: all; synthetic 100].")
@click.option("--sparse-frames", type=click.IntRange(min=1), default=4, show_default=True)
@click.option("--sparse-steps", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--dense-steps", type=click.IntRange(min=1), default=400, show_default=True)
@click.option("--dense-train-clips", type=click.IntRange(min=1), default=200, show_default=True)
@click.option(
    "--dense-perturbation",
    default=None,
    help="Use this trained universal perturbation (path or zoo name) instead of training one.",
)
@qp_option
@click.option(
    "--baseline",
    "baselines",
    multiple=True,
    type=click.Choice(["h264", "jpeg", "median", "bitdepth"]),
    help="Also measure this baseline defense in Table 3 (repeatable).",
)
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True)
@seed_option
@device_option
@json_option
@click.pass_context
def command(
    ctx,
    dataset,
    root,
    out,
    lrcn,
    c3d,
    comdefend,
    num_test,
    sparse_frames,
    sparse_steps,
    dense_steps,
    dense_train_clips,
    dense_perturbation,
    qp,
    baselines,
    batch_size,
    seed,
    device,
    as_json,
):
    """Reproduce the paper's experiments: attacks, detection thresholds, every defense.

    Builds the clean / sparse / dense test sets, calibrates the detector (Tables 1, 2), measures
    each defense (Table 3) and the detect-and-route framework on the mixed set (Table 4), and
    writes report.md, results.json and PNG figures into --out. Rerun the same command to resume
    an interrupted run.

    \b
    Examples:
      vidshield reproduce --dataset synthetic --out results/synthetic
      vidshield reproduce --dataset ut-interaction --out results/ut-interaction --device cuda
      vidshield reproduce --dataset ucf101 --root /data --lrcn runs/lrcn --c3d runs/c3d --out runs/ucf
    """
    from vidshield.eval.reproduce import ReproduceConfig, reproduce

    cfg = ReproduceConfig(
        dataset=dataset,
        root=None if root is None else str(root),
        lrcn=lrcn,
        c3d=c3d,
        comdefend=comdefend,
        num_test=num_test,
        sparse_frames=sparse_frames,
        sparse_steps=sparse_steps,
        dense_steps=dense_steps,
        dense_train_clips=dense_train_clips,
        dense_perturbation=dense_perturbation,
        qp=qp,
        extra_defenses=tuple(baselines),
        seed=seed,
        batch_size=batch_size,
    )
    with progress_bar(disable=as_json, transient=False) as bar:
        results = reproduce(cfg, out, device=resolve_device(device), progress=bar, command=command_line(ctx))
    if as_json:
        echo_json(
            {k: results[k] for k in ("table3", "table4", "auc", "calibration", "attacks", "figures") if k in results}
        )
    else:
        print_summary(results, out)
    return 0

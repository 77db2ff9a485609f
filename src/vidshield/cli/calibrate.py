"""``vidshield calibrate``: choose gamma1 / gamma2 as in the paper's Tables 1 and 2."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from vidshield.cli.detect import detector_options
from vidshield.cli.options import echo_json, json_option, resolve_device
from vidshield.utils import progress_bar

GROUPS = ("clean", "sparse", "dense")


def _parse_holdout(ctx, param, values):
    out = {}
    for v in values:
        name, sep, path = v.partition("=")
        if not sep or not name or not path:
            raise click.BadParameter(f"expected NAME=DIR, got {v!r}", param_hint="--holdout")
        if name in GROUPS or name in out:
            raise click.BadParameter(f"holdout name {name!r} is reserved or repeated", param_hint="--holdout")
        if not Path(path).exists():
            raise click.BadParameter(f"{path} does not exist", param_hint="--holdout")
        out[name] = Path(path)
    return out


def _detect_groups(det, sources, *, window, stride, successful_only, progress):
    """Run detection on every video of every group -> list of per-video records."""
    from vidshield.detection import collect_videos, detect_file

    files = [
        (group, path, entry)
        for group, src in sources.items()
        for path, entry in collect_videos(src, successful_only=successful_only)
    ]
    records = []
    with progress_bar(disable=not progress) as bar:
        task = bar.add_task("detecting", total=len(files))
        for group, path, entry in files:
            summary, windows = detect_file(det, path, window=window, stride=stride)
            records.append(
                {
                    "group": group,
                    "file": str(path),
                    "frames": summary.num_frames,
                    "windows": len(windows),
                    "alpha": summary.alpha,
                    "scores": dict(summary.scores),
                    "frame_labels": list(summary.frame_labels),
                    "exception_frames": list(summary.exception_frames),
                    **{k: entry[k] for k in ("source", "label", "pred_before", "pred_after", "success") if k in entry},
                }
            )
            bar.update(task, advance=1, description=f"detecting {group}")
    return records


def _scores_by_group(records, groups):
    names = list(records[0]["scores"])
    return {g: {n: [r["scores"][n] for r in records if r["group"] == g] for n in names} for g in groups}


def _holdout_report(records, holdout_names, gamma1, gamma2, score):
    from vidshield.detection import roc, route

    clean = [r for r in records if r["group"] == "clean"]
    out = {}
    for name in holdout_names:
        rows = [r for r in records if r["group"] == name]
        verdicts = [route(r["scores"][score], gamma1, gamma2) for r in rows]
        out[name] = {
            "videos": len(rows),
            "detected_adversarial": sum(v != "clean" for v in verdicts) / len(rows),
            "verdicts": {v: verdicts.count(v) for v in ("clean", "sparse", "dense")},
            "auc_vs_clean": {
                n: roc([r["scores"][n] for r in clean], [r["scores"][n] for r in rows]).auc for n in rows[0]["scores"]
            },
        }
    return out


def _median_example(records, group):
    rows = sorted((r for r in records if r["group"] == group), key=lambda r: (r["alpha"], r["file"]))
    return rows[len(rows) // 2]


@click.command("calibrate")
@click.option(
    "--clean", type=click.Path(exists=True, path_type=Path), default=None, help="Folder (or file) of clean videos."
)
@click.option(
    "--sparse",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="Sparsely attacked videos (temporal-defense cases).",
)
@click.option(
    "--dense",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="Densely attacked videos (spatial-defense cases).",
)
@click.option(
    "--holdout",
    multiple=True,
    callback=_parse_holdout,
    metavar="NAME=DIR",
    help="Adversarial videos of an attack NOT used for calibration (repeatable): detection rate at the picked thresholds, AUC vs clean.",
)
@click.option(
    "--reuse",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="results.json of an earlier run: reuse its per-video scores instead of running the model.",
)
@click.option(
    "--score",
    default="alpha",
    show_default=True,
    help="Score to pick the thresholds on (the others are measured alongside).",
)
@click.option(
    "--all-clips",
    is_flag=True,
    help="Keep clips whose attack failed (manifest 'success': false); by default they are left out.",
)
@detector_options
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Output folder: detector.json, results.json, report.md, figures/fig2/3/4 PNGs.",
)
@json_option
def command(
    clean, sparse, dense, holdout, reuse, score, all_clips, model_ref, window, stride, batch_size, device, out, as_json
):
    """Pick the detection thresholds by maximum F1, as in the paper.

    Table 1 sweeps gamma1 = 0.075 .. 0.25 on clean (negative) vs sparse + dense (positive);
    Table 2 sweeps gamma2 = 0.25 .. 0.425 on sparse (negative) vs dense (positive). Folders are
    adversarial sets with a manifest.json (clips whose attack failed are skipped unless
    --all-clips) or plain folders of videos. Every consistency score is measured side by side
    (ROC AUC for both tasks). Writes OUT/detector.json (load it with `vidshield detect --config`),
    OUT/results.json (every number and per-video score), OUT/report.md (Tables 1 and 2, the AUCs)
    and the figures OUT/figures/fig2_alpha.png, fig3_labels.png, fig4_roc.png (the file names of
    `vidshield reproduce`).

    \b
    Examples:
      vidshield calibrate --clean runs/adv/clean --sparse runs/adv/sparse --dense runs/adv/dense \\
          --model runs/lrcn --out runs/calib
      vidshield calibrate ... --holdout saliency=runs/adv/saliency --out runs/calib
      vidshield calibrate --reuse runs/calib/results.json --score js_divergence --out runs/calib-js
    """
    from rich.console import Console

    from vidshield import __version__
    from vidshield.detection import CONSISTENCY_SCORES, DetectorConfig
    from vidshield.detection.calibration import TASKS, calibrate_all, sweep_rich_table
    from vidshield.errors import InputFormatError
    from vidshield.eval.figures import detection_figures
    from vidshield.eval.report import REPORT_FILE, threshold_tables
    from vidshield.jsonio import read_json
    from vidshield.utils import atomic_write_bytes, atomic_write_json

    if score not in CONSISTENCY_SCORES:
        raise click.BadParameter(
            f"unknown score {score!r}; known: {', '.join(CONSISTENCY_SCORES)}", param_hint="--score"
        )
    if reuse is not None:
        try:
            previous = read_json(reuse)
            records, model_name = previous["videos"], previous.get("model")
            if not records or not all({"group", "alpha", "scores", "frame_labels", "file"} <= set(r) for r in records):
                raise ValueError("per-video records are missing or incomplete")
        except (InputFormatError, KeyError, TypeError, ValueError) as e:
            raise click.BadParameter(
                f"{reuse} is not a results.json of `vidshield calibrate`: {e}", param_hint="--reuse"
            ) from e
        holdout_names = sorted({r["group"] for r in records} - set(GROUPS))
    else:
        missing = [f"--{g}" for g, v in zip(GROUPS, (clean, sparse, dense)) if v is None]
        if missing:
            raise click.UsageError(f"{', '.join(missing)} required (or --reuse results.json)")
        if model_ref is None:
            raise click.UsageError("--model is required (or --reuse results.json)")
        from vidshield.detection import load_detector

        det = load_detector(model_ref, device=resolve_device(device), batch_size=batch_size)
        sources = {"clean": clean, "sparse": sparse, "dense": dense, **holdout}
        records = _detect_groups(
            det,
            sources,
            window=window,
            stride=stride,
            successful_only=not all_clips,
            progress=not as_json and sys.stderr.isatty(),
        )
        model_name, holdout_names = str(model_ref), list(holdout)
    try:
        result, aucs, curves = calibrate_all(_scores_by_group(records, GROUPS), score=score)
    except ValueError as e:
        raise click.UsageError(str(e)) from e
    held = _holdout_report(records, holdout_names, result.gamma1, result.gamma2, score)
    t1, t2 = result.table1, result.table2
    config = DetectorConfig(
        gamma1=result.gamma1,
        gamma2=result.gamma2,
        score=score,
        model=model_name,
        calibration={
            "counts": dict(result.counts),
            "table1_best": {k: getattr(t1.best, k) for k in ("threshold", "precision", "recall", "f1")},
            "table2_best": {k: getattr(t2.best, k) for k in ("threshold", "precision", "recall", "f1")},
            "auc": aucs[score],
            "sources": {g: str(v) for g, v in zip(GROUPS, (clean, sparse, dense)) if v},
        },
    )
    out.mkdir(parents=True, exist_ok=True)
    config.save(out / "detector.json")
    results = {
        "vidshield_version": __version__,
        "model": model_name,
        "score": score,
        "options": {"window": window, "stride": stride, "all_clips": all_clips},
        "detector": config.to_dict(),
        "calibration": result.to_dict(),
        "auc": aucs,
        "holdout": held,
        "videos": records,
    }
    atomic_write_json(out / "results.json", results)
    md = [f"# Detection calibration ({score})", "", *threshold_tables(result.to_dict(), aucs, score=score)]
    for name, h in held.items():
        md.append(
            f"\nHold-out attack **{name}** ({h['videos']} videos): detected as adversarial "
            f"{100 * h['detected_adversarial']:.1f}%, verdicts {h['verdicts']}, AUC vs clean ({score}) "
            f"{h['auc_vs_clean'][score]:.3f}"
        )
    atomic_write_bytes(out / REPORT_FILE, ("\n".join(md) + "\n").encode())
    strips = []
    for g in GROUPS:
        ex = _median_example(records, g)
        strips.append((f"{g}: {Path(ex['file']).name}", ex["frame_labels"]))
    detection_figures(
        out / "figures",
        {g: [r["alpha"] for r in records if r["group"] == g] for g in GROUPS},
        strips,
        curves,
        gamma1=result.gamma1 if score == "alpha" else None,
        gamma2=result.gamma2 if score == "alpha" else None,
    )

    summary = {
        "gamma1": result.gamma1,
        "gamma2": result.gamma2,
        "score": score,
        "table1_best": config.calibration["table1_best"],
        "table2_best": config.calibration["table2_best"],
        "auc": aucs,
        "holdout": held,
        "counts": dict(result.counts),
        "out": str(out),
    }
    if as_json:
        echo_json(summary)
        return 0
    console = Console()
    name = "" if score == "alpha" else f" ({score})"
    console.print(sweep_rich_table(t1.rows, title=f"Table 1: {TASKS[0]}", best=t1.best, symbol="gamma1" + name))
    console.print(sweep_rich_table(t2.rows, title=f"Table 2: {TASKS[1]}", best=t2.best, symbol="gamma2" + name))
    console.print("\n".join(line for line in md if line.startswith(("|", "\nHold-out", "AUC"))))
    console.print(
        f"picked gamma1 = {result.gamma1:g}, gamma2 = {result.gamma2:g} on {score}; wrote {out}/detector.json"
    )
    return 0

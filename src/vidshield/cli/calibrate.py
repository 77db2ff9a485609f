"""``vidshield calibrate``: choose gamma1 / gamma2 as in the paper's Tables 1 and 2."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import click

from vidshield.cli.detect import detector_options
from vidshield.cli.options import echo_json, json_option, resolve_device
from vidshield.text import printable
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
                    "window_scores": {n: [w.scores[n] for w in windows] for n in summary.scores},
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
    help="Score to pick the thresholds on (the others are measured alongside); feature_spike needs a network "
    "with per-frame features (the lrcn).",
)
@click.option(
    "--all-clips",
    is_flag=True,
    help="Keep clips whose attack failed (manifest 'success': false); by default they are left out.",
)
@click.option(
    "--target-fpr",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=None,
    help="False-alarm budget: pick gamma1 so that at most this share of clean windows fires (finite-sample "
    "conformal quantile of the --clean windows); --sparse/--dense then only set gamma2.",
)
@click.option(
    "--fpr-holdout",
    type=click.FloatRange(0, 1, max_open=True),
    default=0.25,
    show_default=True,
    help="With --target-fpr: share of the clean videos held out of calibration to measure the achieved rate.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the --fpr-holdout split.")
@click.option(
    "--gamma2",
    "fpr_gamma2",
    type=click.FloatRange(0),
    default=None,
    help="With --target-fpr and no --sparse/--dense: the sparse/dense threshold [default: 0.3 on alpha; "
    "required for other scores; above every value of the score (1 for the scores in [0, 1], e.g. 1e6 for "
    "feature_spike) routes every flagged window to the temporal defense].",
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
    clean,
    sparse,
    dense,
    holdout,
    reuse,
    score,
    all_clips,
    target_fpr,
    fpr_holdout,
    seed,
    fpr_gamma2,
    model_ref,
    window,
    stride,
    batch_size,
    device,
    out,
    as_json,
):
    """Pick the detection thresholds by maximum F1, as in the paper, or gamma1 by a false-alarm budget.

    Table 1 sweeps gamma1 = 0.075 .. 0.25 on clean (negative) vs sparse + dense (positive);
    Table 2 sweeps gamma2 = 0.25 .. 0.425 on sparse (negative) vs dense (positive). Folders are
    adversarial sets with a manifest.json (clips whose attack failed are skipped unless
    --all-clips) or plain folders of videos. Every consistency score is measured side by side
    (ROC AUC for both tasks). Writes OUT/detector.json (load it with `vidshield detect --config`),
    OUT/results.json (every number and per-video score), OUT/report.md (Tables 1 and 2, the AUCs)
    and the figures OUT/figures/fig2_alpha.png, fig3_labels.png, fig4_roc.png (the file names of
    `vidshield reproduce`).

    With --target-fpr (beyond the paper) gamma1 is the split-conformal quantile of the clean
    windows' scores: with the n calibration windows sorted, k = ceil((n + 1)(1 - fpr)) and a
    window fires when its score is above the k-th smallest, so a new clean window fires with
    probability at most fpr (n >= (1 - fpr) / fpr windows needed: 99 for 1 %). --fpr-holdout of
    the clean videos are kept out to report the achieved rate. gamma2 comes from --sparse/--dense
    (Table 2) when given, else stays 0.3 (alpha). The budget is stored in detector.json; `detect`
    and `scan` then flag a video of n windows only when k windows fire with
    P(Binomial(n, fpr) >= k) <= fpr. The clean videos also give the in-domain profile stored in
    detector.json (:mod:`vidshield.detection.domain`; not with --reuse): `scan` says when a video
    is far from them.

    \b
    Examples:
      vidshield calibrate --clean runs/adv/clean --sparse runs/adv/sparse --dense runs/adv/dense \\
          --model runs/lrcn --out runs/calib
      vidshield calibrate ... --holdout saliency=runs/adv/saliency --out runs/calib
      vidshield calibrate --reuse runs/calib/results.json --score js_divergence --out runs/calib-js
      vidshield calibrate --clean my/clean/videos --target-fpr 0.01 --model runs/detector --out runs/calib-fpr
    """
    from rich.console import Console

    from vidshield import __version__
    from vidshield.detection import CONSISTENCY_SCORES, DetectorConfig
    from vidshield.detection.calibration import TASKS, calibrate_all, sweep_rich_table
    from vidshield.detection.scores import FEATURE_SCORES, known_score
    from vidshield.errors import InputFormatError
    from vidshield.eval.figures import detection_figures
    from vidshield.eval.report import REPORT_FILE, fpr_line, fpr_lines, threshold_tables
    from vidshield.jsonio import read_json
    from vidshield.utils import atomic_write_bytes, atomic_write_json

    if not known_score(score):
        raise click.BadParameter(
            f"unknown score {score!r}; known: {', '.join([*CONSISTENCY_SCORES, *FEATURE_SCORES])}", param_hint="--score"
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
        needed = (clean,) if target_fpr is not None and sparse is None and dense is None else (clean, sparse, dense)
        missing = [f"--{g}" for g, v in zip(GROUPS, needed) if v is None]
        if missing:
            raise click.UsageError(f"{', '.join(missing)} required (or --reuse results.json)")
        if model_ref is None:
            raise click.UsageError("--model is required (or --reuse results.json)")
        from vidshield.detection import load_detector

        det = load_detector(model_ref, device=resolve_device(device), batch_size=batch_size)
        sources = {g: v for g, v in zip(GROUPS, (clean, sparse, dense)) if v is not None} | holdout
        records = _detect_groups(
            det,
            sources,
            window=window,
            stride=stride,
            successful_only=not all_clips,
            progress=not as_json and sys.stderr.isatty(),
        )
        model_name, holdout_names = str(model_ref), list(holdout)
    fpr = domain = None
    if target_fpr is not None:
        fpr = _fpr_calibration(
            records, score, target_fpr, fpr_holdout, seed, f"{printable(reuse) if reuse else 'detection'} records"
        )
        if reuse is None:
            domain = _domain_profile(det.model, records)
        if not any(r["group"] in ("sparse", "dense") for r in records):
            return _write_fpr_only(records, fpr, domain, score, fpr_gamma2, model_name, window, stride, out, as_json)
    try:
        result, aucs, curves = calibrate_all(_scores_by_group(records, GROUPS), score=score)
    except ValueError as e:
        raise click.UsageError(str(e)) from e
    if fpr is not None:
        result = dataclasses.replace(result, gamma1=fpr["gamma1"], gamma2=max(result.gamma2, fpr["gamma1"]))
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
            **({"fpr": fpr} if fpr is not None else {}),
        },
        target_fpr=target_fpr,
        domain=domain,
    )
    out.mkdir(parents=True, exist_ok=True)
    config.save(out / "detector.json")
    results = {
        "vidshield_version": __version__,
        "model": model_name,
        "score": score,
        "options": {"window": window, "stride": stride, "all_clips": all_clips, "target_fpr": target_fpr},
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
    if fpr is not None:
        md += ["", *fpr_lines(fpr)]
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
        **({"fpr": _fpr_summary(fpr)} if fpr is not None else {}),
    }
    if as_json:
        echo_json(summary)
        return 0
    console = Console()
    name = "" if score == "alpha" else f" ({score})"
    console.print(sweep_rich_table(t1.rows, title=f"Table 1: {TASKS[0]}", best=t1.best, symbol="gamma1" + name))
    console.print(sweep_rich_table(t2.rows, title=f"Table 2: {TASKS[1]}", best=t2.best, symbol="gamma2" + name))
    console.print("\n".join(line for line in md if line.startswith(("|", "\nHold-out", "AUC"))))
    if fpr is not None:
        console.print(fpr_line(fpr))
    console.print(
        f"picked gamma1 = {result.gamma1:g}, gamma2 = {result.gamma2:g} on {score}; wrote {out}/detector.json"
    )
    return 0


def _window_scores(records, score, what):
    """group -> video -> its window scores of ``score``, each checked (records from --reuse are
    read from a file anyone can write)."""
    from vidshield.errors import InputFormatError
    from vidshield.jsonio import field

    groups: dict[str, dict[str, list[float]]] = {}
    for r in records:
        if r.get("group") == "clean" and "window_scores" not in r:
            raise InputFormatError(
                f"{what}: --target-fpr needs per-window scores; this results.json predates them: rerun without --reuse"
            )
        if "window_scores" not in r:
            continue
        group = field(r, "group", str, max_len=256, what=what)
        file = field(r, "file", str, max_len=4096, what=what)
        per_score = field(r, "window_scores", dict, what=what)
        scores = field(per_score, score, list, items=float, max_len=10_000_000, what=f"{what}: window_scores")
        if not scores:
            raise InputFormatError(f"{what}: {printable(file)} has no window scores")
        groups.setdefault(group, {})[file] = [float(v) for v in scores]
    return groups


def _fpr_calibration(records, score, target_fpr, holdout_fraction, seed, what):
    """gamma1 from the clean videos' window scores, with the other groups' detection rates
    (:func:`~vidshield.detection.calibration.calibrate_fpr_groups`)."""
    from vidshield.detection.calibration import calibrate_fpr_groups
    from vidshield.errors import VidshieldError

    try:
        return calibrate_fpr_groups(
            _window_scores(records, score, what), target_fpr, holdout_fraction=holdout_fraction, seed=seed
        )
    except ValueError as e:
        raise VidshieldError(printable(e)) from e


def _domain_profile(model, records):
    """The in-domain profile (:func:`~vidshield.detection.domain.fit_domain`) of every clean video
    (the --fpr-holdout part included), as a dict for the detector config."""
    from vidshield.detection.domain import domain_of, file_embeddings, fit_domain
    from vidshield.errors import VidshieldError

    clean = [r["file"] for r in records if r["group"] == "clean"]
    try:
        return fit_domain((file_embeddings(model, f) for f in clean), embedding=domain_of(model)).to_dict()
    except ValueError as e:
        raise VidshieldError(printable(e)) from e


def _fpr_summary(fpr):
    keys = ("target_fpr", "gamma1", "calibration_windows", "heldout_windows", "heldout_window_fpr", "detected")
    return {k: fpr.get(k) for k in keys} | {"heldout_videos_flagged": len(fpr["heldout_videos_flagged"])}


def _write_fpr_only(records, fpr, domain, score, gamma2, model_name, window, stride, out, as_json):
    """--target-fpr with clean videos only: gamma1 from the budget, gamma2 as given (--gamma2) or the
    paper's 0.3 (alpha); at least gamma1.
    Writes detector.json, results.json, report.md and Figures 2 and 3 of the clean videos."""
    from vidshield import __version__
    from vidshield.detection import DetectorConfig
    from vidshield.eval.figures import detection_figures
    from vidshield.eval.report import REPORT_FILE, fpr_line, fpr_lines
    from vidshield.utils import atomic_write_bytes, atomic_write_json

    if score != "alpha" and gamma2 is None:
        raise click.UsageError(f"--score {score} has no default gamma2: give --gamma2, or --sparse and --dense")
    given = gamma2 is not None
    gamma2 = max(DetectorConfig().gamma2 if gamma2 is None else gamma2, fpr["gamma1"])
    config = DetectorConfig(
        gamma1=fpr["gamma1"],
        gamma2=gamma2,
        score=score,
        model=model_name,
        calibration={
            "fpr": fpr,
            "gamma2": "given (--gamma2)" if given else "the paper's 0.3 (no sparse / dense videos given)",
        },
        target_fpr=fpr["target_fpr"],
        domain=domain,
    )
    out.mkdir(parents=True, exist_ok=True)
    config.save(out / "detector.json")
    atomic_write_json(
        out / "results.json",
        {
            "vidshield_version": __version__,
            "model": model_name,
            "score": score,
            "options": {"window": window, "stride": stride, "target_fpr": fpr["target_fpr"]},
            "detector": config.to_dict(),
            "videos": records,
        },
    )
    md = [f"# Detection calibration ({score}): false-alarm budget only", "", *fpr_lines(fpr)]
    atomic_write_bytes(out / REPORT_FILE, ("\n".join(md) + "\n").encode())
    clean = [r for r in records if r["group"] == "clean"]
    ex = _median_example(records, "clean")
    detection_figures(
        out / "figures",
        {"clean": [r["alpha"] for r in clean]},
        [(f"clean: {Path(ex['file']).name}", ex["frame_labels"])],
        gamma1=config.gamma1,
        gamma2=gamma2,
    )
    summary = {"gamma1": config.gamma1, "gamma2": gamma2, "score": score, "fpr": _fpr_summary(fpr), "out": str(out)}
    if as_json:
        echo_json(summary)
    else:
        click.echo(printable(fpr_line(fpr)))
        click.echo(
            f"gamma1 = {config.gamma1:.6g}, gamma2 = {gamma2:g} on {score}; wrote {printable(out)}/detector.json"
        )
    return 0

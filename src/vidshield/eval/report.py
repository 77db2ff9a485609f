"""The reports: ``report.md`` of the reproduction, and the threshold tables (Tables 1 and 2, the
AUCs) that the reproduction and ``vidshield calibrate`` both write."""

from __future__ import annotations

from vidshield import __version__
from vidshield.eval.config import PAPER, ReproduceConfig

__all__ = ["REPORT_FILE", "pct", "threshold_tables", "fpr_line", "fpr_lines", "report_markdown"]

#: The report's file name in the output folder (reproduction and calibration).
REPORT_FILE = "report.md"


def pct(x) -> str:
    """A fraction as a percentage with one decimal; ``n/a`` for None or NaN."""
    return "n/a" if x is None or x != x else f"{100 * x:.1f}%"


def report_markdown(cfg: ReproduceConfig, device, res: dict, figures: dict, command: str) -> str:
    """The reproduction's ``report.md``: attacks, Tables 1-4 next to the paper's, figures."""
    p = PAPER
    t3, t4 = res["table3"], res["table4"]
    lines = [
        f"# vidshield reproduction: {cfg.dataset}",
        "",
        f"Produced by `{command}` (vidshield {__version__}, seed {cfg.seed}, device {device}). "
        f"Models: CNN+LSTM `{cfg.lrcn}`, C3D `{cfg.c3d}`, ComDefend `{cfg.comdefend}`. "
        f"{res['counts']['test_clips']} test clips. Every number below is in `results.json`.",
        "",
        "## Attacks",
        "",
        "| attack | victim | success rate | perturbed frames | mean abs (0-255) | l_inf (0-255) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for s, m in (("sparse", "CNN+LSTM"), ("dense", "C3D")):
        a = res["attacks"][s]
        lines.append(
            f"| {s} | {m} | {pct(a['success_rate'])} | {a['mean_perturbed_frames']:.1f} | "
            f"{a['mean_abs_255']:.2f} | {a['linf_255']:.1f} |"
        )
    lines += ["", "## Tables 1 and 2: thresholds (adversarial clips that fooled their victim)", ""]
    if res.get("calibration"):
        lines += threshold_tables(res["calibration"], res["auc"], paper=p)
    else:
        lines.append("Not computed: one of the sets has no successful adversarial clip.")
    lines += [
        "",
        "## Table 3: accuracy per model and defense (ours / paper)",
        "",
        "| model | input | no defense | spatial | temporal | temporal (minority rule) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for m, name in (("lrcn", "CNN+LSTM"), ("c3d", "C3D")):
        for s, row in t3[m].items():
            pr = p["table3"][m][s]
            lines.append(
                f"| {name} | {s} | {pct(row['none'])} / {pct(pr['none'])} | {pct(row['spatial'])} / "
                f"{pct(pr['spatial'])} | {pct(row['temporal'])} / {pct(pr['temporal'])} | "
                f"{pct(row['temporal-minority'])} |"
            )
    if cfg.extra_defenses:
        lines += [
            "",
            "Baseline defenses on the same clips (ours only; the paper has none):",
            "",
            "| model | input | " + " | ".join(cfg.extra_defenses) + " |",
            "|---|---|" + "---:|" * len(cfg.extra_defenses),
        ]
        for m, name in (("lrcn", "CNN+LSTM"), ("c3d", "C3D")):
            for s, row in t3[m].items():
                lines.append(f"| {name} | {s} | " + " | ".join(pct(row[d]) for d in cfg.extra_defenses) + " |")
    c = t4["counts"]
    lines += [
        "",
        f"## Table 4: mixed set ({c['clean']} clean + {c['sparse']} sparse + {c['dense']} dense, "
        "adversarial clips all fooling their victim)",
        "",
        "| strategy | ours | paper |",
        "|---|---:|---:|",
        f"| no defense | {pct(t4['no_defense'])} | {pct(p['table4']['no_defense'])} |",
        f"| spatial only | {pct(t4['spatial_only'])} | {pct(p['table4']['spatial_only'])} |",
        f"| temporal only | {pct(t4['temporal_only'])} | {pct(p['table4']['temporal_only'])} |",
        f"| detection + routing (paper thresholds 0.175 / 0.3) | {pct(t4['combined'])} | {pct(p['table4']['combined'])} |",
    ]
    if "combined_calibrated" in t4:
        lines.append(f"| detection + routing (calibrated thresholds) | {pct(t4['combined_calibrated'])} | |")
    lines.append(f"| detection + routing, minority rule (beyond the paper) | {pct(t4['combined_minority'])} | |")
    if "combined_calibrated_minority" in t4:
        lines.append(f"| calibrated + minority rule (beyond the paper) | {pct(t4['combined_calibrated_minority'])} | |")
    lines.append(f"| detection + routing + squeeze check (beyond the paper) | {pct(t4['combined_squeeze'])} | |")
    if "combined_calibrated_squeeze" in t4:
        lines.append(f"| calibrated + squeeze check (beyond the paper) | {pct(t4['combined_calibrated_squeeze'])} | |")
    lines += [
        "",
        f"Clean accuracy of the CNN+LSTM: {pct(t4['clean_accuracy'])}; the combined defense recovers "
        + ", ".join(f"{k}: {pct(v)}" for k, v in t4["recovery_of_clean"].items())
        + " of it.",
        "",
    ]
    lines += [
        "Routing (paper thresholds), rows = true set, columns = verdict:",
        "",
        "| set | clean | sparse | dense |",
        "|---|---:|---:|---:|",
    ]
    for s, row in t4["routing"]["paper"].items():
        lines.append(f"| {s} | {row['clean']} | {row['sparse']} | {row['dense']} |")
    lines += ["", "## Figures", ""]
    for k, v in figures.items():
        lines.append(f"![{k}]({v})")
        lines.append("")
    return "\n".join(lines) + "\n"


def threshold_tables(calibration: dict, aucs: dict, *, score: str = "alpha", paper: dict | None = None) -> list[str]:
    """Markdown lines of Tables 1 and 2 (threshold sweeps, max-F1 picks; next to the paper's when
    ``paper`` is given) and the AUC of every consistency score (``score``: the one routed on).

    Args:
        calibration: :meth:`CalibrationResult.to_dict` (``table1`` / ``table2`` rows and best).
        aucs: score -> ``{"clean_vs_adversarial": AUC, "sparse_vs_dense": AUC}``.
    """
    from vidshield.detection.calibration import TASKS, SweepRow, sweep_markdown

    lines = []
    name = "" if score == "alpha" else f" ({score})"
    for key, task, positive, sym in (
        ("table1", TASKS[0], "adversarial positive", "gamma1"),
        ("table2", TASKS[1], "dense positive", "gamma2"),
    ):
        rows = [SweepRow(**r) for r in calibration[key]["rows"]]
        best = SweepRow(**calibration[key]["best"])
        title = f"Table {key[-1]}: {task} ({positive})"
        lines.append(sweep_markdown(rows, title=title, best=best, symbol=sym + name))
        picked = (
            f"Picked {sym}{name} = {best.threshold:.3f}: P {pct(best.precision)}, R {pct(best.recall)}, "
            f"F1 {pct(best.f1)}."
        )
        if paper is not None:
            q = paper[key]
            picked += f" Paper: {sym} = {q[sym]}, P {pct(q['precision'])}, R {pct(q['recall'])}, F1 {pct(q['f1'])}."
        lines += [picked, ""]
    lines += [
        "AUC of each consistency score (Figure 4; alpha is the paper's):",
        "",
        "| score | clean vs adversarial | sparse vs dense |",
        "|---|---:|---:|",
    ]
    for n, a in aucs.items():
        mark = " (routing)" if n == score and score != "alpha" else ""
        lines.append(f"| {n}{mark} | {a['clean_vs_adversarial']:.3f} | {a['sparse_vs_dense']:.3f} |")
    return lines


def fpr_line(fpr: dict) -> str:
    """One sentence on a false-alarm budget (:func:`~vidshield.detection.calibration.calibrate_fpr_groups`):
    gamma1, the rank it came from, the held-out rate and the other groups' detection rates."""
    held = fpr["heldout_window_fpr"]
    line = (
        f"false-alarm budget {fpr['target_fpr']:g}: gamma1 = {fpr['gamma1']:.6g} (k = {fpr['threshold']['rank']} of "
        f"{fpr['calibration_windows']} clean windows); held out: "
        + (f"{100 * held:.2f}% of {fpr['heldout_windows']} windows fire" if held is not None else "none")
        + f", {len(fpr['heldout_videos_flagged'])} of {len(fpr['heldout_videos'])} clean videos flagged"
    )
    for group, d in fpr.get("detected", {}).items():
        line += f"; {group}: {100 * d['flagged']:.1f}% of {d['videos']} videos flagged"
    return line


def fpr_lines(fpr: dict) -> list[str]:
    """Markdown lines of the false-alarm budget section of ``vidshield calibrate --target-fpr``."""
    return [
        "## False-alarm budget (beyond the paper)",
        "",
        f"{fpr['method']}; a video of n windows is flagged when k windows fire with "
        f"P(Binomial(n, {fpr['target_fpr']:g}) >= k) <= {fpr['target_fpr']:g}.",
        "",
        fpr_line(fpr) + ".",
    ]

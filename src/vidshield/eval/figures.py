"""The figures of the reproduction and of ``vidshield calibrate``: one writer, one set of file names.

- Figure 2 (``fig2_alpha.png``): alpha of clean, sparse and dense clips, thresholds dashed.
- Figure 3 (``fig3_labels.png``): per-frame labels of a clean, a sparse and a dense clip.
- Figure 4 (``fig4_roc.png``): ROC curves of both tasks, one per consistency score.
- Figure 7 (``fig7_examples.png``, reproduction only): a frame clean, attacked, and defended.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["FIGURE_FILES", "detection_figures", "reproduction_figures", "figure7"]

#: figure -> file name inside the ``figures/`` folder.
FIGURE_FILES = {
    "figure2": "fig2_alpha.png",
    "figure3": "fig3_labels.png",
    "figure4": "fig4_roc.png",
    "figure7": "fig7_examples.png",
}


def detection_figures(
    folder: Path,
    alphas: dict[str, list[float]],
    strips: list[tuple[str, list[int]]],
    curves: dict | None = None,
    *,
    gamma1: float | None = None,
    gamma2: float | None = None,
    class_names: list[str] | None = None,
) -> dict[str, Path]:
    """Figures 2, 3 and 4 (4 only with ``curves``) into ``folder`` -> ``{figure: path}``.

    Args:
        alphas: group (``clean``, ``sparse``, ``dense``) -> alpha per clip.
        strips: ``(title, frame labels)`` per example clip.
        curves: the ROC curves of :func:`~vidshield.detection.calibration.calibrate_all`.
        gamma1, gamma2: thresholds drawn on Figure 2 (None: not drawn).
    """
    from vidshield.detection import plots

    out = {
        "figure2": plots.plot_score_distributions(
            alphas, folder / FIGURE_FILES["figure2"], gamma1=gamma1, gamma2=gamma2
        ),
        "figure3": plots.plot_label_strips(strips, folder / FIGURE_FILES["figure3"], class_names=class_names),
    }
    if curves is not None:
        out["figure4"] = plots.plot_roc_curves(curves, folder / FIGURE_FILES["figure4"])
    return out


def reproduction_figures(
    out: Path, sets: dict, detections: dict, res: dict, reports: dict, class_names: list
) -> dict[str, str]:
    """Figures 2, 3, 4 and 7 of a reproduction into ``out/figures`` -> ``{figure: path relative to out}``."""
    groups = {s: [d["alpha"] for d in detections[s]] for s in ("clean", "sparse", "dense")}
    cal = res.get("calibration") or {}
    pick = next((i for i, r in enumerate(reports["sparse"]) if r["success"]), 0)
    pick_d = next((i for i, r in enumerate(reports["dense"]) if r["success"]), 0)
    strips = [
        ("clean", detections["clean"][pick]["frame_labels"]),
        ("sparse attack", detections["sparse"][pick]["frame_labels"]),
        ("dense attack", detections["dense"][pick_d]["frame_labels"]),
    ]
    figs = out / "figures"
    paths = detection_figures(
        figs,
        groups,
        strips,
        res.get("_curves"),
        gamma1=cal.get("gamma1"),
        gamma2=cal.get("gamma2"),
        class_names=class_names,
    )
    paths["figure7"] = figure7(sets, out / "sets", figs / FIGURE_FILES["figure7"])
    return {k: str(Path(v).relative_to(out)) for k, v in paths.items()}


def figure7(sets: dict, examples: Path, path: Path) -> Path:
    """Figure 7: a clean frame, its attacked version, the perturbation, and the defended frames
    (``examples``: the folder of the stages' ``example_SET_DEFENSE.safetensors``)."""
    from vidshield.io import load_clips
    from vidshield.plotting import new_figure, save_figure

    rows = []
    for set_name, defenses in (("sparse", ("temporal", "spatial")), ("dense", ("spatial",))):
        adv = sets[set_name][0]
        clean = sets["clean"][0]
        t = int((adv - clean).abs().flatten(1).amax(1).argmax())  # a perturbed frame
        cells = [
            ("clean", clean[t]),
            (f"{set_name} attack", adv[t]),
            ("perturbation x10", (adv[t] - clean[t]) * 10 + 0.5),
        ]
        for d in defenses:
            p = examples / f"example_{set_name}_{d}.safetensors"
            if p.is_file():
                cells.append((f"{d} defense", load_clips(p)[0][0][t]))
        rows.append((f"{set_name}, frame {t}", cells))
    ncol = max(len(c) for _, c in rows)
    fig = new_figure(2.0 * ncol, 2.2 * len(rows))
    axes = fig.subplots(len(rows), ncol, squeeze=False)
    for r, (title, cells) in enumerate(rows):
        for c in range(ncol):
            ax = axes[r][c]
            ax.axis("off")
            if c < len(cells):
                name, img = cells[c]
                ax.imshow(img.clamp(0, 1).permute(1, 2, 0).numpy())
                ax.set_title(f"{name}" if c else f"{title}\n{name}", fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path, 110)

"""The paper's experiments end to end: Tables 1-4 and Figures 2, 3, 4 and 7.

:func:`reproduce` runs the stages (:mod:`vidshield.eval.stages`: clean clips, sparse attack, dense
attack, detection, defend + classify; each cached, so an interrupted run resumes), then the
tables (:mod:`vidshield.eval.tables`), the figures (:mod:`vidshield.eval.figures`) and the report
(:mod:`vidshield.eval.report`); its configuration is :class:`~vidshield.eval.config.ReproduceConfig`.

Who classifies what (the paper does not say for Table 4): clean and sparse clips are classified by
the CNN+LSTM (the sparse attack's victim, also the detector), dense clips by C3D (the dense
attack's victim). Table 4's mixed set holds every clean clip and the adversarial clips that fooled
their victim, as in the paper.
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import asdict
from pathlib import Path

import torch

from vidshield import __version__
from vidshield.errors import VidshieldError
from vidshield.eval.config import DATASET_DEFAULTS, PAPER, ReproduceConfig
from vidshield.eval.figures import reproduction_figures
from vidshield.eval.report import REPORT_FILE, report_markdown
from vidshield.eval.stages import (
    StageContext,
    load_json,
    load_models,
    stage_clean,
    stage_dense,
    stage_detect,
    stage_predict,
    stage_sparse,
)
from vidshield.eval.tables import compute_tables
from vidshield.utils import atomic_write_bytes, atomic_write_json

__all__ = ["ReproduceConfig", "PAPER", "reproduce", "DATASET_DEFAULTS"]


def reproduce(
    cfg: ReproduceConfig,
    out: str | Path,
    *,
    device: str | torch.device = "cpu",
    progress=None,
    command: str | None = None,
) -> dict:
    """Run (or resume) the reproduction into ``out``; returns the results dict (also written to
    ``out/results.json``, with ``out/report.md`` and ``out/figures/*.png``)."""
    cfg = cfg.resolved()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    saved = load_json(out / "config.json")
    if saved is not None and saved != json.loads(json.dumps(asdict(cfg))):
        raise VidshieldError(f"{out} holds a reproduction with another configuration; use a new --out folder")
    atomic_write_json(out / "config.json", asdict(cfg))
    ctx = StageContext(cfg=cfg, out=out, device=torch.device(device), progress=progress)
    torch.manual_seed(cfg.seed)
    t_start = time.perf_counter()
    load_models(ctx)
    clean, labels = stage_clean(ctx)
    sparse, sparse_reports = stage_sparse(ctx, clean, labels)
    dense, dense_reports = stage_dense(ctx, clean, labels)
    sets = {"clean": clean, "sparse": sparse, "dense": dense}
    detections = stage_detect(ctx, sets)
    preds = stage_predict(ctx, sets, detections)
    reports = {"sparse": sparse_reports, "dense": dense_reports}
    res = compute_tables(labels.tolist(), reports, detections, preds, extra_defenses=cfg.extra_defenses)
    figures = reproduction_figures(out, sets, detections, res, reports, ctx.class_names)
    res.pop("_curves", None)
    command = command or "vidshield.eval.reproduce()"
    results = {
        "config": asdict(cfg),
        "seed": cfg.seed,
        "version": __version__,
        "command": command,
        "device": str(ctx.device),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "paper": PAPER,
        **res,
        "figures": figures,
        "timings": ctx.timings | {"total_s": time.perf_counter() - t_start},
    }
    atomic_write_json(out / "results.json", results)
    atomic_write_bytes(out / REPORT_FILE, report_markdown(cfg, ctx.device, res, figures, command).encode())
    return results

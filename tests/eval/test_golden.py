"""Golden tests of the tables: Table 4 (and Tables 1-3) recomputed from stored stage outputs equal
the stored numbers exactly.

- The shipped reproductions (``results/*``): the tables computed now from their ``detections.json``,
  ``predictions.json`` and attack reports equal their ``results.json``, which the earlier code
  (routing written inside the reproduction) produced.
- A fixed set of stage outputs drawn from a seeded ``random.Random`` (platform-independent): its
  tables are stored in ``tests/expected/tables-fixed-set.json``.
- The tiny end-to-end reproduction (``tests/eval/test_reproduce.py``) compares its tables with
  ``tests/expected/reproduce-tiny.json``.

Regenerate the stored files on purpose (after a change that is meant to change the numbers) with
``VIDSHIELD_REGEN_GOLDEN=1 pytest tests/eval/test_golden.py tests/eval/test_reproduce.py`` and
review the diff.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from tests.eval.golden import check_golden

from vidshield.eval.tables import compute_tables

REPO = Path(__file__).resolve().parents[2]
SHIPPED = sorted(p.parent for p in (REPO / "results").glob("*/predictions.json"))


def tables_of(folder: Path) -> tuple[dict, dict]:
    """(tables recomputed from a reproduction folder's stage outputs, its results.json)."""
    reports = {s: json.loads((folder / "sets" / f"{s}_reports.json").read_text()) for s in ("sparse", "dense")}
    detections = json.loads((folder / "detections.json").read_text())
    preds = json.loads((folder / "predictions.json").read_text())
    config = json.loads((folder / "config.json").read_text())
    labels = [r["label"] for r in reports["sparse"]]
    assert labels == [r["label"] for r in reports["dense"]]
    res = compute_tables(labels, reports, detections, preds, extra_defenses=tuple(config.get("extra_defenses", ())))
    res.pop("_curves", None)
    return json.loads(json.dumps(res)), json.loads((folder / "results.json").read_text())


@pytest.mark.parametrize("folder", SHIPPED, ids=lambda p: p.name)
def test_shipped_reproductions_give_their_tables(folder):
    res, stored = tables_of(folder)
    for key in ("table4", "table3", "counts", "calibration", "auc", "alpha_means"):
        assert res[key] == stored[key], key
    for s in ("sparse", "dense"):  # means of floats: the last digit may differ
        assert res["attacks"][s] == pytest.approx(stored["attacks"][s], rel=1e-12)


def test_the_shipped_synthetic_table4_is_the_readme_s():
    """The README's Table 4 column for synthetic (100 + 54 + 33 clips)."""
    res, _ = tables_of(REPO / "results" / "synthetic")
    t4 = res["table4"]
    assert t4["counts"] == {"clean": 100, "sparse": 54, "dense": 33}
    shown = {k: round(100 * t4[k], 1) for k in ("no_defense", "spatial_only", "temporal_only", "combined")}
    assert shown == {"no_defense": 53.5, "spatial_only": 97.3, "temporal_only": 82.4, "combined": 80.7}
    assert round(100 * t4["combined_squeeze"], 1) == 97.9


def fixed_stage_outputs(n: int = 12, t: int = 8, classes: int = 3, seed: int = 0):
    """Seeded stage outputs of ``n`` clips: labels, reports, detections and predictions under
    every Table 3 defense, with alphas spread over the three verdicts."""
    rng = random.Random(seed)
    labels = [rng.randrange(classes) for _ in range(n)]
    reports, detections, preds = {}, {}, {}
    for s, lo, hi in (("clean", 0.0, 0.2), ("sparse", 0.1, 0.35), ("dense", 0.05, 0.6)):
        dets = []
        for _ in range(n):
            frame_labels = [rng.randrange(classes) for _ in range(t)]
            exceptions = [f for f in range(1, t - 1) if frame_labels[f - 1] != frame_labels[f] != frame_labels[f + 1]]
            alpha = round(rng.uniform(lo, hi), 4)
            verdict = "clean" if alpha < 0.175 else "sparse" if alpha < 0.3 else "dense"
            scores = {"alpha": alpha, "js_divergence": round(rng.uniform(0, 1), 4)}
            dets.append(
                {
                    "alpha": alpha,
                    "verdict": verdict,
                    "frame_labels": frame_labels,
                    "exception_frames": exceptions,
                    "scores": scores,
                }
            )
        detections[s] = dets
        if s != "clean":
            reports[s] = [
                {
                    "label": labels[i],
                    "success": rng.random() < 0.6,
                    "perturbed_frames": rng.randrange(t),
                    "mean_abs_255": 1.0,
                    "linf": 0.04,
                }
                for i in range(n)
            ]
    victims = {"clean": ("lrcn", "c3d"), "sparse": ("lrcn",), "dense": ("c3d", "lrcn")}
    for s, models in victims.items():
        for m in models:
            for d in ("none", "spatial", "temporal", "temporal-minority"):
                right = {"none": 0.3 if s != "clean" else 0.9, "spatial": 0.8, "temporal": 0.7}.get(d, 0.75)
                preds[f"{m}/{s}/{d}"] = [
                    labels[i] if rng.random() < right else (labels[i] + 1) % classes for i in range(n)
                ]
    return labels, reports, detections, preds


def test_tables_of_a_fixed_set():
    labels, reports, detections, preds = fixed_stage_outputs()
    res = compute_tables(labels, reports, detections, preds)
    res.pop("_curves", None)
    t4 = res["table4"]
    assert t4["counts"]["sparse"] > 0 and t4["counts"]["dense"] > 0
    assert sum(t4["routing"]["paper"]["dense"].values()) == t4["counts"]["dense"]
    check_golden("tables-fixed-set.json", {k: res[k] for k in ("table3", "table4", "counts", "calibration")})

import numpy as np
import pytest

from vidshield.detection import GAMMA1_GRID, GAMMA2_GRID, calibrate, compare_scores, pick_best, roc, sweep
from vidshield.detection.calibration import SweepRow, data_grid, sweep_markdown, sweep_rich_table, threshold_grid


def test_paper_grids():
    assert GAMMA1_GRID == (0.075, 0.1, 0.125, 0.15, 0.175, 0.2, 0.225, 0.25)
    assert GAMMA2_GRID == (0.25, 0.275, 0.3, 0.325, 0.35, 0.375, 0.4, 0.425)
    assert 0.3 in GAMMA2_GRID and 2 / 16 in GAMMA1_GRID  # exact doubles, comparable with k/T


def test_sweep_counts_and_metrics():
    scores = [0.0, 0.1, 0.2, 0.3]
    positive = np.array([False, True, False, True])
    (r,) = sweep(scores, positive, [0.1])
    # predicted positive: 0.1, 0.2, 0.3 -> tp 2, fp 1, fn 0, tn 1
    assert (r.tp, r.fp, r.fn, r.tn) == (2, 1, 0, 1)
    assert r.precision == pytest.approx(2 / 3) and r.recall == 1.0 and r.f1 == pytest.approx(0.8)
    (none,) = sweep(scores, positive, [0.5])
    assert (none.precision, none.recall, none.f1, none.tp) == (0.0, 0.0, 0.0, 0)


def test_threshold_is_inclusive_like_routing():
    (r,) = sweep([0.175], np.array([True]), [0.175])
    assert r.tp == 1


def test_calibration_picks_known_optimum():
    # Clean up to 0.125 (one clean at 0.125 makes 0.125 worse), adversarial from 0.15: only
    # gamma1 = 0.15 separates perfectly. Sparse up to 0.3, dense from 0.325 (one dense at 0.325
    # makes 0.35 worse): only gamma2 = 0.325 separates perfectly.
    clean = [0.0, 0.05, 0.1, 0.125]
    sparse = [0.15, 0.2, 0.3]
    dense = [0.325, 0.4, 0.45]
    res = calibrate(clean, sparse, dense)
    assert res.gamma1 == 0.15 and res.table1.best.f1 == 1.0
    assert res.gamma2 == 0.325 and res.table2.best.f1 == 1.0
    assert [r.threshold for r in res.table1.rows] == list(GAMMA1_GRID)
    assert sum(r.f1 == 1.0 for r in res.table1.rows) == 1
    assert res.table1.roc.auc == 1.0 and res.table2.roc.auc == 1.0
    assert res.counts == {"clean": 4, "sparse": 3, "dense": 3}
    d = res.to_dict()
    assert d["gamma1"] == 0.15 and d["table1"]["roc"]["thresholds"][0] is None  # +inf -> null


def test_ties_go_to_smallest_threshold():
    rows = [SweepRow(t, 1.0, 1.0, f1, 0, 0, 0, 0) for t, f1 in [(0.1, 0.5), (0.2, 0.9), (0.3, 0.9), (0.4, 0.2)]]
    assert pick_best(rows).threshold == 0.2


def test_roc_auc_known_value():
    # One of the four (neg, pos) pairs is mis-ordered -> AUC 0.75.
    c = roc([0.1, 0.3], [0.2, 0.4])
    assert c.auc == pytest.approx(0.75)
    assert c.fpr[-1] == 1.0 and c.tpr[-1] == 1.0


def test_compare_scores():
    per = {"good": ([0.0, 0.1], [0.5, 0.6], [0.8, 0.9]), "flat": ([0.0, 0.0], [0.0, 0.0], [0.0, 0.0])}
    out = compare_scores(per)
    assert out["good"] == {"clean_vs_adversarial": 1.0, "sparse_vs_dense": 1.0}
    assert out["flat"] == {"clean_vs_adversarial": 0.5, "sparse_vs_dense": 0.5}


def test_errors():
    with pytest.raises(ValueError, match="at least one sparse"):
        calibrate([0.1], [], [0.5])
    with pytest.raises(ValueError, match="inconsistent"):
        calibrate([0.0], [0.5], [0.6], gamma1_grid=[0.4], gamma2_grid=[0.1])
    with pytest.raises(ValueError, match="bool"):
        sweep([0.1], [1], [0.1])
    with pytest.raises(ValueError, match="same length"):
        sweep([0.1, 0.2], np.array([True]), [0.1])
    with pytest.raises(ValueError, match="both classes"):
        roc([], [0.1])


def test_grids():
    assert threshold_grid(0.1, 0.3, 0.1) == (0.1, 0.2, 0.3)
    assert data_grid([0.3, 0.1, 0.3]) == (0.1, 0.3)


def test_tables_render():
    rows = sweep([0.0, 0.2], np.array([False, True]), [0.1, 0.3])
    md = sweep_markdown(rows, title="Table 1", best=rows[0], symbol="gamma1")
    assert "| gamma1 | precision | recall | F1 |" in md
    assert "| 0.100 * | 100.0% | 100.0% | 100.0% |" in md
    assert "| 0.300 | 0.0% | 0.0% | 0.0% |" in md
    table = sweep_rich_table(rows, title="Table 1", best=rows[0])
    assert table.row_count == 2


def test_calibrate_all_measures_every_score():
    from vidshield.detection.calibration import TASKS, calibrate_all

    groups = {
        "clean": {"alpha": [0.0, 0.0625, 0.125], "soft": [0.0, 0.1, 0.2]},
        "sparse": {"alpha": [0.1875, 0.25], "soft": [0.5, 0.6]},
        "dense": {"alpha": [0.3125, 0.5], "soft": [0.55, 0.9]},
    }
    res, aucs, curves = calibrate_all(groups)
    assert (res.gamma1, res.gamma2) == (0.15, 0.275)  # smallest of the tied perfect thresholds
    assert aucs["alpha"] == {"clean_vs_adversarial": 1.0, "sparse_vs_dense": 1.0}
    assert aucs["soft"]["clean_vs_adversarial"] == 1.0 and aucs["soft"]["sparse_vs_dense"] == 0.75
    assert set(curves) == set(TASKS) and set(curves[TASKS[1]]) == {"alpha", "soft"}
    # a non-alpha score is swept over its observed values
    res_soft, _, _ = calibrate_all(groups, score="soft")
    assert res_soft.gamma1 == 0.5 and res_soft.table1.best.f1 == 1.0
    with pytest.raises(ValueError, match="not among"):
        calibrate_all(groups, score="nope")

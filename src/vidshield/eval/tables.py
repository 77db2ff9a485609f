"""Tables 1-4 of the reproduction, from the stages' outputs (pure: no model runs here).

Inputs, as the stages write them (:mod:`vidshield.eval.stages`):

- ``labels``: the true class of every test clip;
- ``reports``: per set (``sparse``, ``dense``) one attack report per clip (``success``, metrics);
- ``detections``: per set (``clean``, ``sparse``, ``dense``) one ``Detection.to_dict()`` per clip;
- ``preds``: ``"MODEL/SET/DEFENSE" -> [predicted class per clip]``.

Who classifies what (the paper does not say for Table 4): clean and sparse clips are classified by
the CNN+LSTM (``lrcn``, the sparse attack's victim, also the detector), dense clips by C3D (the
dense attack's victim). Table 4's mixed set holds every clean clip and the adversarial clips that
fooled their victim, as in the paper; every strategy is decided by
:func:`vidshield.routing.route_defense`, as in :class:`~vidshield.pipeline.DefensePipeline`.
"""

from __future__ import annotations

from vidshield.detection.exception import route
from vidshield.eval.config import TABLE3_DEFENSES
from vidshield.routing import route_defense

__all__ = ["PAPER_THRESHOLDS", "accuracy", "compute_tables", "table4"]

#: The paper's gamma1, gamma2.
PAPER_THRESHOLDS = (0.175, 0.3)
_SETS = ("clean", "sparse", "dense")


def accuracy(pred: list[int], labels: list[int], idx: list[int] | None = None) -> float:
    """Fraction of ``idx`` (default: all) where ``pred`` equals ``labels``; NaN for none."""
    idx = list(range(len(labels)) if idx is None else idx)
    return sum(pred[i] == labels[i] for i in idx) / len(idx) if idx else float("nan")


def compute_tables(
    labels: list[int], reports: dict, detections: dict, preds: dict, *, extra_defenses: tuple[str, ...] = ()
) -> dict:
    """Tables 1-4, the attacks' summary and the AUCs -> the results dict (``_curves``: the ROC
    curves for Figure 4, not JSON)."""
    from vidshield.detection.calibration import calibrate_all

    res: dict = {}
    # Tables 1, 2 and the AUCs: adversarial clips that fooled their victim, as in the paper.
    fooled = {s: [i for i, r in enumerate(reports[s]) if r["success"]] for s in ("sparse", "dense")}
    groups = {
        "clean": detections["clean"],
        "sparse": [detections["sparse"][i] for i in fooled["sparse"]],
        "dense": [detections["dense"][i] for i in fooled["dense"]],
    }
    res["counts"] = {k: len(v) for k, v in groups.items()} | {"test_clips": len(labels)}
    if all(groups.values()):
        score_names = list(groups["clean"][0]["scores"])
        g = {k: {n: [d["scores"][n] for d in v] for n in score_names} for k, v in groups.items()}
        cal, aucs, curves = calibrate_all(g, score="alpha")
        res["calibration"] = cal.to_dict()
        res["auc"] = aucs
        res["_curves"] = curves
        gammas = {"paper": PAPER_THRESHOLDS, "calibrated": (cal.gamma1, cal.gamma2)}
    else:
        res["calibration"] = None
        gammas = {"paper": PAPER_THRESHOLDS}
    res["alpha_means"] = {k: (sum(d["alpha"] for d in v) / len(v) if v else None) for k, v in groups.items()}

    # Table 3: every clip (the attack's failures count as correct, as accuracy under attack).
    defenses = TABLE3_DEFENSES + tuple(extra_defenses)
    res["table3"] = {
        m: {s: {d: accuracy(preds[f"{m}/{s}/{d}"], labels) for d in defenses} for s in sets}
        for m, sets in (("lrcn", ("clean", "sparse")), ("c3d", ("clean", "dense")))
    }
    res["attacks"] = {
        s: {
            "success_rate": sum(r["success"] for r in reports[s]) / len(reports[s]),
            "mean_perturbed_frames": sum(r["perturbed_frames"] for r in reports[s]) / len(reports[s]),
            "mean_abs_255": sum(r["mean_abs_255"] for r in reports[s]) / len(reports[s]),
            "linf_255": max(r["linf"] for r in reports[s]) * 255,
        }
        for s in ("sparse", "dense")
    }
    res["table4"] = table4(labels, fooled, detections, preds, gammas)
    return res


def table4(labels: list[int], fooled: dict, detections: dict, preds: dict, gammas: dict) -> dict:
    """Table 4: accuracy on the mixed set under the fixed strategies and under detection + routing.

    Args:
        labels, detections, preds: as :func:`compute_tables`.
        fooled: ``{"sparse": [clip index], "dense": [...]}``, the adversarial clips in the mix.
        gammas: ``name -> (gamma1, gamma2)``; ``paper`` gives the ``combined*`` rows, any other
            name ``combined_NAME*``.

    Rows: ``no_defense``, ``spatial_only``, ``temporal_only``; per threshold pair, the routed
    combination with the exception frames (``combined``), with the minority rule
    (``..._minority``) and with the squeeze check (``..._squeeze``); the clean accuracy, each
    combination's share of it, the counts, and the routing matrix (true set x verdict).
    """
    # the mixed set: (set, index, victim)
    items = [("clean", i, "lrcn") for i in range(len(labels))]
    items += [("sparse", i, "lrcn") for i in fooled["sparse"]] + [("dense", i, "c3d") for i in fooled["dense"]]

    def acc(choose) -> float:
        """Accuracy when clip (s, i) classified by m is defended by ``choose(s, i, m)`` (a Table 3 column)."""
        ok = [preds[f"{m}/{s}/{choose(s, i, m)}"][i] == labels[i] for s, i, m in items]
        return sum(ok) / len(ok)

    def fixed(strategy: str):
        return lambda s, i, m: route_defense(detections[s][i], strategy=strategy)

    def routed(thresholds, *, minority=False, squeeze=False):
        def choose(s, i, m):
            changed = preds[f"{m}/{s}/spatial"][i] != preds[f"{m}/{s}/none"][i] if squeeze else None
            d = route_defense(detections[s][i], thresholds=thresholds, label_changed_by_spatial=changed)
            return "temporal-minority" if minority and d == "temporal" else d

        return choose

    t4 = {
        "no_defense": acc(fixed("none")),
        "spatial_only": acc(fixed("spatial")),
        "temporal_only": acc(fixed("temporal")),
    }
    for gname, thresholds in gammas.items():
        key = "combined" if gname == "paper" else f"combined_{gname}"
        t4[key] = acc(routed(thresholds))
        t4[key + "_minority"] = acc(routed(thresholds, minority=True))
        t4[key + "_squeeze"] = acc(routed(thresholds, squeeze=True))
    clean_acc = accuracy(preds["lrcn/clean/none"], labels)
    t4["clean_accuracy"] = clean_acc
    t4["recovery_of_clean"] = {k: t4[k] / clean_acc for k in list(t4) if k.startswith("combined")} if clean_acc else {}
    t4["counts"] = {"clean": len(labels), "sparse": len(fooled["sparse"]), "dense": len(fooled["dense"])}
    t4["routing"] = {  # true set x verdict
        gname: {
            s: {v: sum(route(detections[ss][i]["alpha"], *g) == v for ss, i, _ in items if ss == s) for v in _SETS}
            for s in _SETS
        }
        for gname, g in gammas.items()
    }
    return t4

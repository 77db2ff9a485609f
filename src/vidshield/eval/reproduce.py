"""The paper's experiments end to end: Tables 1-4 and Figures 2, 3, 4 and 7.

Stages (each cached in the output folder, so an interrupted run resumes where it stopped):

1. ``clean``: test clips at the models' input spec, quantised to 8 bits (as a file would hold).
2. ``sparse``: the sparse l2,1 attack (Wei et al.) on the CNN+LSTM.
3. ``dense``: a universal C-DUP perturbation (Li et al.) trained on training clips against C3D,
   added to every test clip at a random start.
4. ``detect``: per-frame labels of the detection network (CNN+LSTM, recurrence removed), alpha and
   the soft scores for every clean / sparse / dense clip.
5. ``predict``: each classifier's prediction on each set under no defense, the spatial defense,
   the temporal defense (exception frames, and the ``minority`` rule beside it).
6. Tables: 1 and 2 (threshold sweeps, max-F1 picks), 3 (per-model accuracy per defense),
   4 (the mixed set under fixed strategies and under detection + routing), figures, report.

Who classifies what (the paper does not say for Table 4): clean and sparse clips are classified by
the CNN+LSTM (the sparse attack's victim, also the detector), dense clips by C3D (the dense
attack's victim). Table 4's mixed set holds every clean clip and the adversarial clips that fooled
their victim, as in the paper.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch

from vidshield import __version__
from vidshield.errors import VidshieldError
from vidshield.jsonio import read_json
from vidshield.utils import atomic_write_bytes, atomic_write_json

__all__ = ["ReproduceConfig", "PAPER", "reproduce", "DATASET_DEFAULTS"]

#: The paper's numbers (REFERENCE.md section 1), shown next to ours.
PAPER = {
    "table1": {"gamma1": 0.175, "precision": 0.68, "recall": 0.88, "f1": 0.77},
    "table2": {"gamma2": 0.30, "precision": 0.58, "recall": 0.75, "f1": 0.65},
    "table3": {
        "lrcn": {
            "clean": {"none": 0.78, "spatial": 0.66, "temporal": 0.76},
            "sparse": {"none": 0.31, "spatial": 0.55, "temporal": 0.64},
        },
        "c3d": {
            "clean": {"none": 0.89, "spatial": 0.81, "temporal": 0.88},
            "dense": {"none": 0.59, "spatial": 0.73, "temporal": 0.59},
        },
    },
    "table4": {"no_defense": 0.26, "spatial_only": 0.44, "temporal_only": 0.41, "combined": 0.48},
}

#: Shipped model names per data set.
DATASET_DEFAULTS = {
    "synthetic": {"lrcn": "synthetic-lrcn", "c3d": "synthetic-c3d"},
    "ut-interaction": {"lrcn": "ut-lrcn", "c3d": "ut-c3d"},
    "ucf101": {"lrcn": None, "c3d": None},
}

DEFENSES = ("none", "spatial", "temporal", "temporal-minority")

#: Baseline defenses that can be measured beside the paper's (``extra_defenses``), with their settings.
BASELINES = {"h264": {"crf": 28}, "jpeg": {"quality": 75}, "median": {"kernel": 3}, "bitdepth": {"bits": 4}}


def _make_baseline(name: str):
    from vidshield.defenses.h264 import H264Defense
    from vidshield.defenses.spatial import BitDepthDefense, JpegDefense, MedianDefense

    classes = {"h264": H264Defense, "jpeg": JpegDefense, "median": MedianDefense, "bitdepth": BitDepthDefense}
    return classes[name](**BASELINES[name])


@dataclass(frozen=True)
class ReproduceConfig:
    """Everything a reproduction depends on (written next to its results).

    Attributes:
        dataset: ``synthetic``, ``ut-interaction`` or ``ucf101``.
        root: data root (None: ``$VIDSHIELD_DATA`` or ../shared/data); unused for synthetic. A
            folder of packed clip sets (``train.safetensors``, ``test.safetensors`` from
            ``vidshield pack``) is read instead of the videos.
        lrcn, c3d: shipped model names or checkpoint paths (None: the data set's defaults).
        comdefend: spatial defense weights (shipped name or path).
        num_test: test clips (None: the whole test split; synthetic: 100).
        sparse_frames: frames the sparse attack perturbs (the reference: 10 of 40, a quarter).
        sparse_steps, sparse_lam, sparse_lr: the sparse attack's Adam settings (the reference
            code's: 100 steps, lambda 1, lr 0.255 on the 0-255 scale = 1e-3 here).
        dense_steps, dense_train_clips, dense_p_max: C-DUP generator training.
        dense_perturbation: a trained universal perturbation to use instead of training one (a
            path, or a name in the package zoo such as ``synthetic-c3d-cdup``).
        qp, block, search: the temporal defense.
        extra_defenses: baselines measured beside the paper's defenses in Table 3 (names of
            :data:`BASELINES`: H.264 re-encoding at CRF 28, JPEG 75, 3x3 median, 4-bit depth).
        seed: seeds the data, attacks and shifts.
        batch_size: clips per forward pass.
    """

    dataset: str = "synthetic"
    root: str | None = None
    lrcn: str | None = None
    c3d: str | None = None
    comdefend: str = "comdefend"
    num_test: int | None = None
    sparse_frames: int = 4
    sparse_steps: int = 100
    sparse_lam: float = 1.0
    sparse_lr: float = 1e-3
    dense_steps: int = 400
    dense_train_clips: int = 200
    dense_p_max: float = 10 / 255
    dense_perturbation: str | None = None
    qp: int = 36
    block: int = 8
    search: int = 7
    extra_defenses: tuple[str, ...] = ()
    seed: int = 0
    batch_size: int = 8

    def resolved(self) -> ReproduceConfig:
        if self.dataset not in DATASET_DEFAULTS:
            raise VidshieldError(f"unknown data set {self.dataset!r}; choose from {', '.join(DATASET_DEFAULTS)}")
        d = DATASET_DEFAULTS[self.dataset]
        cfg = replace(self, lrcn=self.lrcn or d["lrcn"], c3d=self.c3d or d["c3d"])
        if cfg.lrcn is None or cfg.c3d is None:
            raise VidshieldError(
                f"no shipped models for {self.dataset}: train them with `vidshield train` and pass --lrcn/--c3d"
            )
        unknown = set(cfg.extra_defenses) - set(BASELINES)
        if unknown:
            raise VidshieldError(f"unknown baseline defenses {sorted(unknown)}; choose from {', '.join(BASELINES)}")
        cfg = replace(cfg, extra_defenses=tuple(cfg.extra_defenses))
        if cfg.num_test is None and cfg.dataset == "synthetic":
            cfg = replace(cfg, num_test=100)
        return cfg


@dataclass
class _Context:
    cfg: ReproduceConfig
    out: Path
    device: torch.device
    progress: object  # rich Progress or None
    lrcn: torch.nn.Module = None
    c3d: torch.nn.Module = None
    spatial: object = None
    temporal: object = None
    baselines: dict = field(default_factory=dict)
    class_names: list = field(default_factory=list)
    timings: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- small helpers


def _task(ctx: _Context, description: str, total: int):
    if ctx.progress is None:
        return None
    return ctx.progress.add_task(description, total=total)


def _advance(ctx: _Context, task, n: int = 1) -> None:
    if task is not None:
        ctx.progress.advance(task, n)


def _load_json(path: Path, expect: type = dict):
    """A cache file of an earlier run (None if absent), bounded and of type ``expect``."""
    return read_json(path, expect=expect) if path.exists() else None


def _save_set(path: Path, videos: torch.Tensor, labels: torch.Tensor, meta: dict) -> None:
    from vidshield.io import save_clips

    save_clips(path, videos, labels, meta)


def _load_set(path: Path):
    from vidshield.io import load_clips

    return load_clips(path)


def _quantise(video: torch.Tensor) -> torch.Tensor:
    return video.mul(255).round().div(255).clamp(0, 1)


@torch.no_grad()
def _predict(model, videos: torch.Tensor, ctx: _Context) -> list[int]:
    out = []
    for i in range(0, videos.shape[0], ctx.cfg.batch_size):
        out += model(videos[i : i + ctx.cfg.batch_size].to(ctx.device)).argmax(-1).cpu().tolist()
    return out


# --------------------------------------------------------------------------- stages


def _load_models(ctx: _Context) -> None:
    from vidshield.defenses.spatial import SpatialDefense
    from vidshield.defenses.temporal import TemporalDefense
    from vidshield.models import load_model

    cfg = ctx.cfg
    ctx.lrcn = load_model(cfg.lrcn, device=ctx.device)
    ctx.c3d = load_model(cfg.c3d, device=ctx.device)
    for m in (ctx.lrcn, ctx.c3d):
        m.eval()
    a, b = ctx.lrcn.input_spec, ctx.c3d.input_spec
    if (a.frames, a.height, a.width) != (b.frames, b.height, b.width):
        raise VidshieldError(f"the CNN+LSTM and C3D must share an input size; got {a} and {b}")
    if not getattr(ctx.lrcn, "has_frame_logits", False):
        raise VidshieldError(f"{cfg.lrcn} has no per-frame path: the detector needs a CNN+LSTM")
    if ctx.lrcn.num_classes != ctx.c3d.num_classes:
        raise VidshieldError("the two models must have the same classes")
    ctx.class_names = list(ctx.lrcn.class_names or range(ctx.lrcn.num_classes))
    ctx.spatial = SpatialDefense(weights=cfg.comdefend).to(ctx.device)
    ctx.temporal = TemporalDefense(qp=cfg.qp, block=cfg.block, search=cfg.search)
    ctx.baselines = {name: _make_baseline(name) for name in cfg.extra_defenses}


def _data_source(cfg: ReproduceConfig) -> tuple[str, str | None]:
    """(data set name, root): a root holding packed clip sets is read as the ``clips`` data set."""
    if cfg.root is not None and (Path(cfg.root) / "test.safetensors").is_file():
        return "clips", cfg.root
    return cfg.dataset, cfg.root


def _resolve_perturbation(ref: str) -> Path:
    from vidshield.models.checkpoints import zoo_dir

    path = Path(ref)
    for candidate in (path, path.with_name(path.name + ".safetensors"), zoo_dir() / f"{ref}.safetensors"):
        if candidate.is_file():
            return candidate
    raise VidshieldError(f"universal perturbation not found: {ref} (a path, or a name in {zoo_dir()})")


def _stage_clean(ctx: _Context):
    path = ctx.out / "sets" / "clean.safetensors"
    if path.is_file():
        return _load_set(path)[:2]
    from vidshield.models.datasets import dataset_for_spec

    cfg = ctx.cfg
    spec = ctx.lrcn.input_spec
    kwargs = {"num_videos": cfg.num_test} if cfg.dataset == "synthetic" else {}
    name, root = _data_source(cfg)
    ds = dataset_for_spec(name, spec, split="test", root=root, seed=cfg.seed, **kwargs)
    n = len(ds) if cfg.num_test is None else min(cfg.num_test, len(ds))
    if cfg.dataset != "synthetic" and n < len(ds):  # a class-balanced subset, deterministic
        order = torch.randperm(len(ds), generator=torch.Generator().manual_seed(cfg.seed)).tolist()[:n]
    else:
        order = list(range(n))
    task = _task(ctx, "clean test clips", n)
    videos, labels = [], []
    for i in order:
        v, y = ds[i]
        videos.append(_quantise(v))
        labels.append(int(y))
        _advance(ctx, task)
    videos, labels = torch.stack(videos), torch.tensor(labels, dtype=torch.int64)
    _save_set(path, videos, labels, {"set": "clean", "dataset": cfg.dataset})
    return videos, labels


def _stage_sparse(ctx: _Context, clean: torch.Tensor, labels: torch.Tensor):
    path = ctx.out / "sets" / "sparse.safetensors"
    reports_path = ctx.out / "sets" / "sparse_reports.json"
    done_videos, done_reports = [], []
    if path.is_file() and reports_path.is_file():
        done_videos = list(_load_set(path)[0])
        done_reports = _load_json(reports_path, list)
    if len(done_reports) >= clean.shape[0]:
        return torch.stack(done_videos), done_reports
    from vidshield.attacks import SparseAttack

    cfg = ctx.cfg
    attack = SparseAttack(
        ctx.lrcn, num_frames=cfg.sparse_frames, steps=cfg.sparse_steps, lam=cfg.sparse_lam, lr=cfg.sparse_lr
    )
    task = _task(ctx, f"sparse attack ({cfg.sparse_frames} frames)", clean.shape[0])
    _advance(ctx, task, len(done_reports))
    t0 = time.perf_counter()
    for i in range(len(done_reports), clean.shape[0], cfg.batch_size):
        x, y = clean[i : i + cfg.batch_size].to(ctx.device), labels[i : i + cfg.batch_size].to(ctx.device)
        adv = _quantise(attack(x, y).cpu())
        pred_before = _predict(ctx.lrcn, x, ctx)
        pred_after = _predict(ctx.lrcn, adv, ctx)
        from vidshield.attacks import perturbation_metrics

        for j, m in enumerate(perturbation_metrics(x.cpu(), adv)):
            done_reports.append(
                {
                    "label": int(y[j]),
                    "pred_before": pred_before[j],
                    "pred_after": pred_after[j],
                    "success": pred_before[j] == int(y[j]) and pred_after[j] != int(y[j]),
                    **m,
                }
            )
        done_videos += list(adv)
        # checkpoint after every batch: an interrupted run keeps every finished clip
        _save_set(path, torch.stack(done_videos), labels[: len(done_videos)], {"set": "sparse"})
        atomic_write_json(reports_path, done_reports)
        _advance(ctx, task, x.shape[0])
    ctx.timings["sparse_attack_s_per_clip"] = (time.perf_counter() - t0) / max(1, clean.shape[0])
    return torch.stack(done_videos), done_reports


def _stage_dense(ctx: _Context, clean: torch.Tensor, labels: torch.Tensor):
    path = ctx.out / "sets" / "dense.safetensors"
    reports_path = ctx.out / "sets" / "dense_reports.json"
    if path.is_file() and reports_path.is_file():
        return _load_set(path)[0], _load_json(reports_path, list)
    from vidshield.attacks import (
        CDUPGenerator,
        apply_universal,
        load_universal,
        perturbation_metrics,
        save_universal,
        train_universal,
    )
    from vidshield.models.datasets import dataset_for_spec

    cfg = ctx.cfg
    spec = ctx.c3d.input_spec
    pert_path = ctx.out / "sets" / "dense_perturbation.safetensors"
    if pert_path.is_file() or cfg.dense_perturbation:
        perturbation = load_universal(
            pert_path if pert_path.is_file() else _resolve_perturbation(cfg.dense_perturbation)
        )[0]
        if tuple(perturbation.shape[1:]) != (3, spec.height, spec.width):
            raise VidshieldError(
                f"the universal perturbation is {tuple(perturbation.shape)}; C3D needs frames of "
                f"3x{spec.height}x{spec.width}"
            )
    else:
        kwargs = {"num_videos": cfg.dense_train_clips} if cfg.dataset == "synthetic" else {}
        name, root = _data_source(cfg)
        ds = dataset_for_spec(name, spec, split="train", root=root, seed=cfg.seed, **kwargs)
        n = min(cfg.dense_train_clips, len(ds))
        task = _task(ctx, "dense attack: training clips", n)
        train_v, train_y = [], []
        for i in range(n):
            v, y = ds[i]
            train_v.append(v)
            train_y.append(int(y))
            _advance(ctx, task)
        gen = CDUPGenerator(frames=spec.frames, height=spec.height, width=spec.width, p_max=cfg.dense_p_max)
        gen = gen.to(ctx.device)
        task = _task(ctx, "dense attack: C-DUP generator", cfg.dense_steps)
        t0 = time.perf_counter()
        train_universal(
            gen,
            ctx.c3d,
            torch.stack(train_v).to(ctx.device),
            torch.tensor(train_y).to(ctx.device),
            steps=cfg.dense_steps,
            seed=cfg.seed,
            progress=lambda step, loss: _advance(ctx, task),
        )
        ctx.timings["dense_generator_train_s"] = time.perf_counter() - t0
        perturbation = gen.perturbation(seed=cfg.seed).detach().cpu()
        save_universal(
            pert_path,
            perturbation,
            generator_net=gen.cpu(),
            metadata={"victim": cfg.c3d, "dataset": cfg.dataset, "steps": cfg.dense_steps},
        )
    offsets = torch.randint(perturbation.shape[0], (clean.shape[0],), generator=torch.Generator().manual_seed(cfg.seed))
    adv = _quantise(apply_universal(clean, perturbation.cpu(), offsets))
    pred_before = _predict(ctx.c3d, clean, ctx)
    pred_after = _predict(ctx.c3d, adv, ctx)
    reports = []
    for j, m in enumerate(perturbation_metrics(clean, adv)):
        y = int(labels[j])
        reports.append(
            {
                "label": y,
                "pred_before": pred_before[j],
                "pred_after": pred_after[j],
                "success": pred_before[j] == y and pred_after[j] != y,
                **m,
            }
        )
    _save_set(path, adv, labels, {"set": "dense"})
    atomic_write_json(reports_path, reports)
    return adv, reports


def _stage_detect(ctx: _Context, sets: dict[str, torch.Tensor]) -> dict:
    path = ctx.out / "detections.json"
    cached = _load_json(path) or {}
    from vidshield.detection import TemporalConsistencyDetector

    detector = TemporalConsistencyDetector(ctx.lrcn, batch_size=ctx.cfg.batch_size)
    for name, videos in sets.items():
        if name in cached:
            continue
        t0 = time.perf_counter()
        dets = detector.detect(videos)
        ctx.timings[f"detect_{name}_s_per_clip"] = (time.perf_counter() - t0) / videos.shape[0]
        cached[name] = [d.to_dict() for d in dets]
        atomic_write_json(path, cached)
    return cached


def _temporal_masks(detections: list[dict], rule: str, t: int) -> torch.Tensor:
    from vidshield.detection import Detection
    from vidshield.pipeline import polluted_frames

    mask = torch.zeros(len(detections), t, dtype=torch.bool)
    for i, d in enumerate(detections):
        det = Detection(**{k: d[k] for k in ("alpha", "verdict", "frame_labels", "exception_frames")})
        mask[i, polluted_frames(det, rule)] = True
    return mask


def _defend(ctx: _Context, defense: str, videos: torch.Tensor, detections: list[dict]) -> torch.Tensor:
    """Apply one defense to a whole set (in batches)."""
    if defense == "none":
        return videos
    out = videos.clone()
    bs = ctx.cfg.batch_size
    for i in range(0, videos.shape[0], bs):
        x = videos[i : i + bs]
        if defense == "spatial":
            out[i : i + bs] = ctx.spatial(x.to(ctx.device)).cpu()
        elif defense in ctx.baselines:
            out[i : i + bs] = ctx.baselines[defense](x).cpu()
        else:
            rule = "minority" if defense == "temporal-minority" else "exceptions"
            mask = _temporal_masks(detections[i : i + bs], rule, x.shape[1])
            rows = mask.any(dim=1)
            if rows.any():
                y = x.clone()
                y[rows] = ctx.temporal(x[rows], mask[rows])
                out[i : i + bs] = y
    return out


def _stage_predict(ctx: _Context, sets: dict[str, torch.Tensor], detections: dict) -> dict:
    """Predictions of each classifier on each set under each defense (cached per entry)."""
    path = ctx.out / "predictions.json"
    preds = _load_json(path) or {}
    victims = {"clean": ("lrcn", "c3d"), "sparse": ("lrcn",), "dense": ("c3d", "lrcn")}
    defenses = DEFENSES + ctx.cfg.extra_defenses
    jobs = [(s, d) for s in sets for d in defenses if any(f"{m}/{s}/{d}" not in preds for m in victims[s])]
    task = _task(ctx, "defend + classify", len(jobs))
    for set_name, defense in jobs:
        t0 = time.perf_counter()
        defended = _defend(ctx, defense, sets[set_name], detections[set_name])
        ctx.timings[f"defense_{defense}_{set_name}_s_per_clip"] = (time.perf_counter() - t0) / sets[set_name].shape[0]
        for m in victims[set_name]:
            preds[f"{m}/{set_name}/{defense}"] = _predict(getattr(ctx, m), defended, ctx)
        atomic_write_json(path, preds)
        if set_name == "sparse" and defense in ("temporal", "spatial"):
            _save_example(ctx, set_name, defense, defended)
        if set_name == "dense" and defense == "spatial":
            _save_example(ctx, set_name, defense, defended)
        _advance(ctx, task)
    return preds


def _save_example(ctx: _Context, set_name: str, defense: str, defended: torch.Tensor) -> None:
    """Keep the first clip of each defended set for Figure 7."""
    path = ctx.out / "sets" / f"example_{set_name}_{defense}.safetensors"
    _save_set(path, defended[:1], torch.zeros(1, dtype=torch.int64), {})


# --------------------------------------------------------------------------- tables


def _accuracy(pred: list[int], labels: list[int], idx: list[int] | None = None) -> float:
    idx = range(len(labels)) if idx is None else idx
    idx = list(idx)
    return sum(pred[i] == labels[i] for i in idx) / len(idx) if idx else float("nan")


def _tables(ctx: _Context, labels: list[int], reports: dict, detections: dict, preds: dict) -> dict:
    from vidshield.detection.calibration import calibrate_all
    from vidshield.detection.exception import route

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
        gammas = {"paper": (0.175, 0.3), "calibrated": (cal.gamma1, cal.gamma2)}
    else:
        res["calibration"] = None
        gammas = {"paper": (0.175, 0.3)}
    res["alpha_means"] = {k: (sum(d["alpha"] for d in v) / len(v) if v else None) for k, v in groups.items()}

    # Table 3: every clip (the attack's failures count as correct, as accuracy under attack).
    res["table3"] = {
        m: {s: {d: _accuracy(preds[f"{m}/{s}/{d}"], labels) for d in DEFENSES + ctx.cfg.extra_defenses} for s in sets}
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

    # Table 4: the mixed set. (set, index, victim) triples.
    items = [("clean", i, "lrcn") for i in range(len(labels))]
    items += [("sparse", i, "lrcn") for i in fooled["sparse"]] + [("dense", i, "c3d") for i in fooled["dense"]]

    def acc(choose) -> float:
        ok = [preds[f"{m}/{s}/{choose(s, i, m)}"][i] == labels[i] for s, i, m in items]
        return sum(ok) / len(ok)

    route_to = {"clean": "none", "sparse": "temporal", "dense": "spatial"}
    minority = {"none": "none", "temporal": "temporal-minority", "spatial": "spatial"}

    def squeezed(defense: str, s: str, i: int, m: str) -> str:
        """Beyond the paper: a clip routed clean whose label changes under the spatial defense is
        treated as densely attacked (a feature-squeezing check, Xu et al. 2018)."""
        if defense == "none" and preds[f"{m}/{s}/spatial"][i] != preds[f"{m}/{s}/none"][i]:
            return "spatial"
        return defense

    t4 = {
        "no_defense": acc(lambda s, i, m: "none"),
        "spatial_only": acc(lambda s, i, m: "spatial"),
        "temporal_only": acc(lambda s, i, m: "temporal"),
    }
    verdicts = {}
    for gname, (g1, g2) in gammas.items():
        v = {(s, i): route(detections[s][i]["alpha"], g1, g2) for s, i, _ in items}
        verdicts[gname] = v
        key = "combined" if gname == "paper" else "combined_calibrated"
        t4[key] = acc(lambda s, i, m, v=v: route_to[v[(s, i)]])
        t4[key + "_minority"] = acc(lambda s, i, m, v=v: minority[route_to[v[(s, i)]]])
        t4[key + "_squeeze"] = acc(lambda s, i, m, v=v: squeezed(route_to[v[(s, i)]], s, i, m))
    clean_acc = _accuracy(preds["lrcn/clean/none"], labels)
    t4["clean_accuracy"] = clean_acc
    t4["recovery_of_clean"] = {k: t4[k] / clean_acc for k in list(t4) if k.startswith("combined")} if clean_acc else {}
    t4["counts"] = {"clean": len(labels), "sparse": len(fooled["sparse"]), "dense": len(fooled["dense"])}
    t4["routing"] = {
        gname: {
            s: {
                verdict: sum(1 for (ss, _), vv in v.items() if ss == s and vv == verdict)
                for verdict in ("clean", "sparse", "dense")
            }
            for s in ("clean", "sparse", "dense")
        }
        for gname, v in verdicts.items()
    }
    res["table4"] = t4
    return res


# --------------------------------------------------------------------------- figures and report


def _figures(ctx: _Context, sets: dict, labels: list[int], detections: dict, res: dict, reports: dict) -> dict:
    from vidshield.detection import plots

    figs = ctx.out / "figures"
    out = {}
    groups = {s: [d["alpha"] for d in detections[s]] for s in ("clean", "sparse", "dense")}
    cal = res.get("calibration") or {}
    out["figure2"] = plots.plot_score_distributions(
        groups, figs / "fig2_alpha.png", gamma1=cal.get("gamma1"), gamma2=cal.get("gamma2")
    )
    pick = next((i for i, r in enumerate(reports["sparse"]) if r["success"]), 0)
    pick_d = next((i for i, r in enumerate(reports["dense"]) if r["success"]), 0)
    strips = [
        ("clean", detections["clean"][pick]["frame_labels"]),
        ("sparse attack", detections["sparse"][pick]["frame_labels"]),
        ("dense attack", detections["dense"][pick_d]["frame_labels"]),
    ]
    out["figure3"] = plots.plot_label_strips(strips, figs / "fig3_labels.png", class_names=ctx.class_names)
    if "_curves" in res:
        out["figure4"] = plots.plot_roc_curves(res["_curves"], figs / "fig4_roc.png")
    out["figure7"] = _figure7(ctx, sets, figs / "fig7_examples.png")
    return {k: str(Path(v).relative_to(ctx.out)) for k, v in out.items()}


def _figure7(ctx: _Context, sets: dict, path: Path) -> Path:
    """Figure 7: a clean frame, its attacked version, the perturbation, and the defended frames."""
    from vidshield.detection.plots import _figure, _save

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
            p = ctx.out / "sets" / f"example_{set_name}_{d}.safetensors"
            if p.is_file():
                cells.append((f"{d} defense", _load_set(p)[0][0][t]))
        rows.append((f"{set_name}, frame {t}", cells))
    ncol = max(len(c) for _, c in rows)
    fig = _figure(2.0 * ncol, 2.2 * len(rows))
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
    return _save(fig, path, 110)


def _pct(x) -> str:
    return "n/a" if x is None or x != x else f"{100 * x:.1f}%"


def _report(ctx: _Context, res: dict, figures: dict, command: str) -> str:
    cfg = ctx.cfg
    p = PAPER
    t3, t4 = res["table3"], res["table4"]
    lines = [
        f"# vidshield reproduction: {cfg.dataset}",
        "",
        f"Produced by `{command}` (vidshield {__version__}, seed {cfg.seed}, device {ctx.device}). "
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
            f"| {s} | {m} | {_pct(a['success_rate'])} | {a['mean_perturbed_frames']:.1f} | "
            f"{a['mean_abs_255']:.2f} | {a['linf_255']:.1f} |"
        )
    cal = res.get("calibration")
    lines += ["", "## Tables 1 and 2: thresholds (adversarial clips that fooled their victim)", ""]
    if cal:
        from vidshield.detection.calibration import SweepRow, sweep_markdown

        for key, title, sym, paper in (
            ("table1", "Table 1: clean vs adversarial (adversarial positive)", "gamma1", p["table1"]),
            ("table2", "Table 2: sparse vs dense (dense positive)", "gamma2", p["table2"]),
        ):
            rows = [SweepRow(**r) for r in cal[key]["rows"]]
            best = SweepRow(**cal[key]["best"])
            lines.append(sweep_markdown(rows, title=title, best=best, symbol=sym))
            lines.append(
                f"Picked {sym} = {best.threshold:.3f}: P {_pct(best.precision)}, R {_pct(best.recall)}, "
                f"F1 {_pct(best.f1)}. Paper: {sym} = {paper[sym]}, P {_pct(paper['precision'])}, "
                f"R {_pct(paper['recall'])}, F1 {_pct(paper['f1'])}."
            )
            lines.append("")
        lines += [
            "AUC of each consistency score (Figure 4; alpha is the paper's):",
            "",
            "| score | clean vs adversarial | sparse vs dense |",
            "|---|---:|---:|",
        ]
        for name, a in res["auc"].items():
            lines.append(f"| {name} | {a['clean_vs_adversarial']:.3f} | {a['sparse_vs_dense']:.3f} |")
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
                f"| {name} | {s} | {_pct(row['none'])} / {_pct(pr['none'])} | {_pct(row['spatial'])} / "
                f"{_pct(pr['spatial'])} | {_pct(row['temporal'])} / {_pct(pr['temporal'])} | "
                f"{_pct(row['temporal-minority'])} |"
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
                lines.append(f"| {name} | {s} | " + " | ".join(_pct(row[d]) for d in cfg.extra_defenses) + " |")
    c = t4["counts"]
    lines += [
        "",
        f"## Table 4: mixed set ({c['clean']} clean + {c['sparse']} sparse + {c['dense']} dense, "
        "adversarial clips all fooling their victim)",
        "",
        "| strategy | ours | paper |",
        "|---|---:|---:|",
        f"| no defense | {_pct(t4['no_defense'])} | {_pct(p['table4']['no_defense'])} |",
        f"| spatial only | {_pct(t4['spatial_only'])} | {_pct(p['table4']['spatial_only'])} |",
        f"| temporal only | {_pct(t4['temporal_only'])} | {_pct(p['table4']['temporal_only'])} |",
        f"| detection + routing (paper thresholds 0.175 / 0.3) | {_pct(t4['combined'])} | {_pct(p['table4']['combined'])} |",
    ]
    if "combined_calibrated" in t4:
        lines.append(f"| detection + routing (calibrated thresholds) | {_pct(t4['combined_calibrated'])} | |")
    lines.append(f"| detection + routing, minority rule (beyond the paper) | {_pct(t4['combined_minority'])} | |")
    if "combined_calibrated_minority" in t4:
        lines.append(
            f"| calibrated + minority rule (beyond the paper) | {_pct(t4['combined_calibrated_minority'])} | |"
        )
    lines.append(f"| detection + routing + squeeze check (beyond the paper) | {_pct(t4['combined_squeeze'])} | |")
    if "combined_calibrated_squeeze" in t4:
        lines.append(f"| calibrated + squeeze check (beyond the paper) | {_pct(t4['combined_calibrated_squeeze'])} | |")
    lines += [
        "",
        f"Clean accuracy of the CNN+LSTM: {_pct(t4['clean_accuracy'])}; the combined defense recovers "
        + ", ".join(f"{k}: {_pct(v)}" for k, v in t4["recovery_of_clean"].items())
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


# --------------------------------------------------------------------------- entry point


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
    saved = _load_json(out / "config.json")
    if saved is not None and saved != json.loads(json.dumps(asdict(cfg))):
        raise VidshieldError(f"{out} holds a reproduction with another configuration; use a new --out folder")
    atomic_write_json(out / "config.json", asdict(cfg))
    ctx = _Context(cfg=cfg, out=out, device=torch.device(device), progress=progress)
    torch.manual_seed(cfg.seed)
    t_start = time.perf_counter()
    _load_models(ctx)
    clean, labels = _stage_clean(ctx)
    sparse, sparse_reports = _stage_sparse(ctx, clean, labels)
    dense, dense_reports = _stage_dense(ctx, clean, labels)
    sets = {"clean": clean, "sparse": sparse, "dense": dense}
    detections = _stage_detect(ctx, sets)
    preds = _stage_predict(ctx, sets, detections)
    label_list = labels.tolist()
    reports = {"sparse": sparse_reports, "dense": dense_reports}
    res = _tables(ctx, label_list, reports, detections, preds)
    figures = _figures(ctx, sets, label_list, detections, res, reports)
    res.pop("_curves", None)
    command = command or "vidshield " + " ".join(sys.argv[1:])
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
    atomic_write_bytes(out / "report.md", _report(ctx, res, figures, command).encode())
    return results

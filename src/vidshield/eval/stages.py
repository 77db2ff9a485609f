"""The reproduction's stages, each cached in the output folder so an interrupted run resumes
where it stopped (:func:`vidshield.eval.reproduce.reproduce` runs them in this order):

1. :func:`stage_clean`: test clips at the models' input spec, quantised to 8 bits (as a file would
   hold) -> ``sets/clean.safetensors``.
2. :func:`stage_sparse`: the sparse l2,1 attack (Wei et al.) on the CNN+LSTM, saved after every
   batch -> ``sets/sparse.safetensors``, ``sets/sparse_reports.json``.
3. :func:`stage_dense`: a universal C-DUP perturbation (Li et al.) trained on training clips
   against C3D (:func:`vidshield.attacks.train_cdup`), added to every test clip at a random start
   -> ``sets/dense*.safetensors``, ``sets/dense_reports.json``.
4. :func:`stage_detect`: per-frame labels of the detection network (CNN+LSTM, recurrence
   removed), alpha and the soft scores of every clip -> ``detections.json``.
5. :func:`stage_predict`: each classifier's prediction on each set under each Table 3 defense
   (no defense, spatial, temporal on the exception frames and on the ``minority`` rule's, the
   baselines asked for) -> ``predictions.json``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from vidshield.errors import VidshieldError
from vidshield.eval.config import TABLE3_DEFENSES, ReproduceConfig
from vidshield.routing import polluted_mask
from vidshield.utils import atomic_write_json

__all__ = [
    "StageContext",
    "load_models",
    "stage_clean",
    "stage_sparse",
    "stage_dense",
    "stage_detect",
    "stage_predict",
    "load_json",
]


@dataclass
class StageContext:
    """What the stages share: the configuration, the output folder, the models and defenses."""

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


def _task(ctx: StageContext, description: str, total: int):
    if ctx.progress is None:
        return None
    return ctx.progress.add_task(description, total=total)


def _advance(ctx: StageContext, task, n: int = 1) -> None:
    if task is not None:
        ctx.progress.advance(task, n)


def load_json(path: Path, expect: type = dict):
    """A cache file of an earlier run (None if absent), bounded and of type ``expect``."""
    from vidshield.jsonio import read_json

    return read_json(path, expect=expect) if path.exists() else None


def _save_set(path: Path, videos: torch.Tensor, labels: torch.Tensor, meta: dict) -> None:
    from vidshield.io import save_clips

    save_clips(path, videos, labels, meta)


def _load_set(path: Path):
    from vidshield.io import load_clips

    return load_clips(path)


def _quantise(video: torch.Tensor) -> torch.Tensor:
    return video.mul(255).round().div(255).clamp(0, 1)


def _predict(model, videos: torch.Tensor, ctx: StageContext) -> list[int]:
    from vidshield.models import predict_labels

    return predict_labels(model, videos, batch_size=ctx.cfg.batch_size, device=ctx.device)


# --------------------------------------------------------------------------- stages


def load_models(ctx: StageContext) -> None:
    from vidshield.defenses import create_defense
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
    ctx.spatial = create_defense("spatial", weights=cfg.comdefend).to(ctx.device)
    ctx.temporal = create_defense("temporal", qp=cfg.qp, block=cfg.block, search=cfg.search)
    ctx.baselines = {name: create_defense(name) for name in cfg.extra_defenses}


def _data_source(cfg: ReproduceConfig) -> tuple[str, str | None]:
    """(data set name, root): a root holding packed clip sets is read as the ``clips`` data set."""
    if cfg.root is not None and (Path(cfg.root) / "test.safetensors").is_file():
        return "clips", cfg.root
    return cfg.dataset, cfg.root


def stage_clean(ctx: StageContext):
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


def stage_sparse(ctx: StageContext, clean: torch.Tensor, labels: torch.Tensor):
    path = ctx.out / "sets" / "sparse.safetensors"
    reports_path = ctx.out / "sets" / "sparse_reports.json"
    done_videos, done_reports = [], []
    if path.is_file() and reports_path.is_file():
        done_videos = list(_load_set(path)[0])
        done_reports = load_json(reports_path, list)
    if len(done_reports) >= clean.shape[0]:
        return torch.stack(done_videos), done_reports
    from vidshield.attacks import create_attack

    cfg = ctx.cfg
    attack = create_attack(
        "sparse", ctx.lrcn, num_frames=cfg.sparse_frames, steps=cfg.sparse_steps, lam=cfg.sparse_lam, lr=cfg.sparse_lr
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


def stage_dense(ctx: StageContext, clean: torch.Tensor, labels: torch.Tensor):
    path = ctx.out / "sets" / "dense.safetensors"
    reports_path = ctx.out / "sets" / "dense_reports.json"
    if path.is_file() and reports_path.is_file():
        return _load_set(path)[0], load_json(reports_path, list)
    from vidshield.attacks import apply_universal, load_universal, perturbation_metrics, train_cdup
    from vidshield.models.datasets import dataset_for_spec

    cfg = ctx.cfg
    spec = ctx.c3d.input_spec
    pert_path = ctx.out / "sets" / "dense_perturbation.safetensors"
    if pert_path.is_file() or cfg.dense_perturbation:
        perturbation = load_universal(pert_path if pert_path.is_file() else cfg.dense_perturbation)[0]
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
        task = _task(ctx, "dense attack: C-DUP generator", cfg.dense_steps)
        t0 = time.perf_counter()
        perturbation = train_cdup(
            ctx.c3d,
            torch.stack(train_v).to(ctx.device),
            torch.tensor(train_y).to(ctx.device),
            pert_path,
            p_max=cfg.dense_p_max,
            steps=cfg.dense_steps,
            seed=cfg.seed,
            progress=lambda step, loss: _advance(ctx, task),
            metadata={"victim": cfg.c3d, "dataset": cfg.dataset, "steps": cfg.dense_steps},
        )
        ctx.timings["dense_generator_train_s"] = time.perf_counter() - t0
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


def stage_detect(ctx: StageContext, sets: dict[str, torch.Tensor]) -> dict:
    path = ctx.out / "detections.json"
    cached = load_json(path) or {}
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


def _defend(ctx: StageContext, defense: str, videos: torch.Tensor, detections: list[dict]) -> torch.Tensor:
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
            mask = polluted_mask(detections[i : i + bs], rule, x.shape[1])
            rows = mask.any(dim=1)
            if rows.any():
                y = x.clone()
                y[rows] = ctx.temporal(x[rows], polluted=mask[rows])
                out[i : i + bs] = y
    return out


def stage_predict(ctx: StageContext, sets: dict[str, torch.Tensor], detections: dict) -> dict:
    """Predictions of each classifier on each set under each defense (cached per entry)."""
    path = ctx.out / "predictions.json"
    preds = load_json(path) or {}
    victims = {"clean": ("lrcn", "c3d"), "sparse": ("lrcn",), "dense": ("c3d", "lrcn")}
    defenses = TABLE3_DEFENSES + ctx.cfg.extra_defenses
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


def _save_example(ctx: StageContext, set_name: str, defense: str, defended: torch.Tensor) -> None:
    """Keep the first clip of each defended set for Figure 7."""
    path = ctx.out / "sets" / f"example_{set_name}_{defense}.safetensors"
    _save_set(path, defended[:1], torch.zeros(1, dtype=torch.int64), {})

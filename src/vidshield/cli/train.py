"""``vidshield train``: train a victim classifier and keep its best checkpoint."""

from __future__ import annotations

from pathlib import Path

import click

from vidshield.cli.options import (
    cache_option,
    dataset_options,
    device_option,
    echo_json,
    json_option,
    num_workers_option,
    require_root,
    resolve_device,
    resume_option,
    seed_option,
)
from vidshield.cli.options import command_line as command_line_of
from vidshield.names import TRAINING_PROTOCOLS
from vidshield.utils import seed_everything


@click.command("train")
@click.option(
    "--model",
    "model_name",
    required=True,
    help="Architecture (see `vidshield models`): c3d, c3d-small, lrcn, lrcn-small, test-*; or a shipped "
    "name / checkpoint path to start from its weights.",
)
@dataset_options
@click.option(
    "--size",
    nargs=2,
    type=click.IntRange(min=16),
    default=None,
    metavar="H W",
    help="Frame size of a new model's input (default: the architecture's; pack the clips at this size).",
)
@click.option(
    "--motion",
    is_flag=True,
    help="A new model also sees each frame's difference to the previous one (3 more input channels).",
)
@click.option("--epochs", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True)
@click.option(
    "--lr",
    type=click.FloatRange(min=0, min_open=True),
    default=1e-3,
    show_default=True,
    help="Peak AdamW learning rate (cosine to 0).",
)
@click.option("--weight-decay", type=click.FloatRange(min=0), default=1e-4, show_default=True)
@click.option(
    "--frame-loss-weight",
    type=click.FloatRange(min=0),
    default=1.0,
    show_default=True,
    help="CNN+LSTM: weight of the per-frame (recurrence-removed) loss.",
)
@click.option(
    "--val-fraction",
    type=click.FloatRange(0, 1, max_open=True),
    default=0.1,
    show_default=True,
    help="Held-out validation share (synthetic: clips from a separate seed).",
)
@click.option(
    "--num-videos", type=click.IntRange(min=1), default=1000, show_default=True, help="Synthetic: training clips."
)
@click.option(
    "--test-videos",
    type=click.IntRange(min=0),
    default=500,
    show_default=True,
    help="Synthetic: test clips for the final evaluation (0: skip).",
)
@click.option("--augment/--no-augment", default=True, show_default=True, help="Training-time augmentation.")
@click.option(
    "--strong-augment",
    is_flag=True,
    help="Clips only: temporal windows of 60-100 % of each clip, crops of 40-100 % of the frame, flips, colour jitter.",
)
@click.option(
    "--clips-per-video",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Randomly sampled clips (windows, crops) of every training video per epoch.",
)
@click.option(
    "--label-smoothing",
    type=click.FloatRange(0, 1, max_open=True),
    default=0.0,
    show_default=True,
    help="Label smoothing of the video and per-frame cross-entropies.",
)
@click.option(
    "--select",
    type=click.Choice(["best", "last"]),
    default="best",
    show_default=True,
    help="Keep the epoch with the best validation top-1, or the last one (a validation set too small to choose by).",
)
@click.option(
    "--protocol",
    type=click.Choice(TRAINING_PROTOCOLS),
    default="split",
    show_default=True,
    help="split: the data set's train/test split (UT: set1 -> set2). loso: UT-Interaction's "
    "leave-one-sequence-out folds (--out is then a folder: fold-KK.* and summary.json).",
)
@click.option(
    "--fold",
    "folds",
    default=None,
    help="loso: the test sequences, e.g. 3, 1-10, set1, set2; default all 20 (finished folds are skipped).",
)
@cache_option
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    required=True,
    help="Best checkpoint path (OUT.safetensors + OUT.json; resumable state in OUT-last.*).",
)
@resume_option
@click.option("--amp/--no-amp", default=True, show_default=True, help="bf16 autocast on CUDA (ignored on CPU).")
@num_workers_option
@device_option
@seed_option
@json_option
@click.pass_context
def command(
    ctx,
    model_name,
    dataset,
    root,
    size,
    motion,
    epochs,
    batch_size,
    lr,
    weight_decay,
    frame_loss_weight,
    val_fraction,
    num_videos,
    test_videos,
    augment,
    strong_augment,
    clips_per_video,
    label_smoothing,
    select,
    protocol,
    folds,
    cache,
    out,
    resume,
    amp,
    num_workers,
    device,
    seed,
    as_json,
):
    """Train a video classifier; keep the best checkpoint by validation accuracy, then report its
    accuracy on the test split (stored in the checkpoint's JSON).

    \b
    Examples:
      vidshield train --model lrcn-small --dataset synthetic --epochs 8 --out runs/synthetic-lrcn
      vidshield train --model c3d-small --dataset ut-interaction --root data/ut --out runs/ut-c3d --device cuda
      vidshield train --model c3d-small --out runs/c3d --epochs 20 --resume   # continue after an interruption
      torchrun --nproc-per-node 4 -m vidshield train --model c3d --dataset ucf101 --root data/ucf101 \
          --batch-size 64 --out runs/ucf-c3d     # 4 GPUs (NCCL) or CPU processes (gloo); 64 = global batch

    Under torchrun, --batch-size is the global batch split over the processes and --lr applies to
    it (the run equals one process with that batch); rank 0 writes the checkpoints and evaluates,
    and --resume works on any number of processes.

    \b
    UT-Interaction's leave-one-sequence-out protocol (fold K: test on sequence K, select the
    epoch on the next sequence of its set, train on the other 8; 10 folds per set):
      vidshield train --model lrcn-small --dataset clips --root packs/ut --protocol loso --fold 3 --out runs/loso
      vidshield train --model lrcn-small --dataset clips --root packs/ut --protocol loso --fold set1 --out runs/loso
    The second runs folds 1-10 (skipping finished ones) and writes runs/loso/summary.json: the
    test accuracy of every fold, their mean and spread.
    """
    from vidshield import ddp
    from vidshield.data import parse_folds
    from vidshield.models import MODEL_REGISTRY, create_model, load_model
    from vidshield.models.datasets import dataset_for_spec, train_val_datasets

    require_root(dataset, root)
    dev = ddp.init_from_env(device) or resolve_device(device)
    ctx.call_on_close(ddp.close)
    arch_config = _arch_config(model_name, size=size, motion=motion)
    run = dict(
        model_name=model_name, arch_config=arch_config, dataset=dataset, root=root, epochs=epochs, batch_size=batch_size, lr=lr,
        weight_decay=weight_decay, frame_loss_weight=frame_loss_weight, label_smoothing=label_smoothing,
        augment=augment, strong_augment=strong_augment, clips_per_video=clips_per_video, select=select, cache=cache,
        resume=resume, amp=amp, num_workers=num_workers, device=dev, seed=seed, progress=not as_json,
        command_line=command_line_of(ctx),
    )  # fmt: skip
    if model_name in MODEL_REGISTRY:
        spec = create_model(model_name, num_classes=1, **arch_config).input_spec
    else:
        spec = load_model(model_name).input_spec

    if folds is not None and protocol != "loso":
        raise click.UsageError("--fold needs --protocol loso")
    if protocol == "loso":
        try:
            fold_list = parse_folds(folds or "all")
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="--fold") from None
        summary = _run_loso(spec, fold_list, out, run)
        if as_json:
            echo_json(summary)
        elif summary is not None:
            for line in _loso_lines(summary):
                click.echo(line)
        return 0

    train_set, val_set, classes = train_val_datasets(
        dataset, spec, root=root, val_fraction=val_fraction, num_videos=num_videos if dataset == "synthetic" else None,
        seed=seed, augment=augment, strong_augment=strong_augment, cache=cache,
    )  # fmt: skip
    test_size = test_videos if dataset == "synthetic" else None
    test_set = None
    if test_size != 0 and ddp.world().is_main:
        test_set = dataset_for_spec(
            dataset, spec, split="test", root=root, num_videos=test_size, seed=seed, cache=cache
        )
    summary = _train_one(spec, train_set, val_set, test_set, classes, out, run, data_info={})
    if summary is None:
        return 0
    if as_json:
        echo_json(summary)
    else:
        click.echo(f"best checkpoint: {summary['best_path']} (epoch {summary['best']['epoch']})")
        if "test" in summary:
            click.echo(_test_line(summary["test"]))
    return 0


def _arch_config(model_name: str, *, size, motion: bool) -> dict:
    """The architecture overrides of ``--size`` / ``--motion`` (only for a new model)."""
    from vidshield.models import MODEL_REGISTRY, create_model

    if not size and not motion:
        return {}
    if model_name not in MODEL_REGISTRY:
        raise click.UsageError(
            "--size and --motion build a new model: give an architecture as --model, not a checkpoint"
        )
    config: dict = {"motion": True} if motion else {}
    if size:
        frames = create_model(model_name, num_classes=1).input_spec.frames
        config["input_size"] = [frames, int(size[0]), int(size[1])]
    return config


def _test_line(test: dict) -> str:
    line = f"test top-1 {test['top1']:.4f}, top-5 {test['top5']:.4f}"
    if "frame_top1" in test:
        line += f", per-frame top-1 {test['frame_top1']:.4f}"
    return line + f" on {test['num_videos']} videos"


def _train_one(spec, train_set, val_set, test_set, classes, out, run, *, data_info) -> dict | None:
    """Train one model from ``run`` (the command's settings), keep the best epoch by validation
    accuracy, evaluate it on ``test_set`` (if any) and store the test metrics in its JSON.

    Returns:
        ``dict(best_path, last_path, best, test?)`` on the main process, None on the others.
    """
    from vidshield import ddp
    from vidshield.models import MODEL_REGISTRY, create_model, load_model, save_model
    from vidshield.models.datasets import Repeated
    from vidshield.models.evaluation import evaluate_classifier
    from vidshield.models.training import train_classifier

    name, dataset, dev = run["model_name"], run["dataset"], run["device"]
    seed_everything(run["seed"])
    if name in MODEL_REGISTRY:
        model, init_from = create_model(name, num_classes=len(classes), **run["arch_config"]), None
    else:
        model, init_from = load_model(name), str(name)
        if model.num_classes != len(classes):
            raise click.BadParameter(
                f"{name} has {model.num_classes} classes but the {dataset} data set has {len(classes)}",
                param_hint="--model",
            )
    if run["clips_per_video"] > 1:
        train_set = Repeated(train_set, run["clips_per_video"])
    metadata = {
        "dataset": {
            "name": dataset,
            "root": str(run["root"]) if run["root"] else None,
            **data_info,
            "train_videos": len(train_set) // run["clips_per_video"],
            "val_videos": len(val_set) if val_set is not None else 0,
        },
        "seed": run["seed"],
        "command": run["command_line"],
        "initialised_from": init_from,
        "run": _fold_settings(run),
    }
    result = train_classifier(
        model, train_set, val_set, epochs=run["epochs"], out=out, batch_size=run["batch_size"], lr=run["lr"],
        weight_decay=run["weight_decay"], device=dev, resume=run["resume"], seed=run["seed"], amp=run["amp"],
        num_workers=run["num_workers"], frame_loss_weight=run["frame_loss_weight"],
        label_smoothing=run["label_smoothing"], class_names=classes, extra_metadata=metadata, progress=run["progress"],
        select=run["select"],
    )  # fmt: skip
    if not ddp.world().is_main:
        return None
    summary = {"best_path": str(result["best_path"]), "last_path": str(result["last_path"]), "best": result["best"]}
    if test_set is not None:
        best = load_model(result["best_path"], device=dev)
        test = evaluate_classifier(
            best, test_set, batch_size=run["batch_size"], device=dev, num_workers=run["num_workers"],
            progress=run["progress"],
        )  # fmt: skip
        keys = ("top1", "top5", "frame_top1", "clean_alpha")
        best.metadata["metrics"].update({f"test_{k}": test[k] for k in keys if k in test})
        best.metadata["dataset"]["test_videos"] = test["num_videos"]
        save_model(best, result["best_path"], metadata=dict(best.metadata))
        summary["test"] = {k: test[k] for k in (*keys, "num_videos") if k in test}
    return summary


def _fold_settings(run: dict) -> dict:
    """What must match for a finished fold to count for this run."""
    keys = ("model_name", "arch_config", "dataset", "epochs", "batch_size", "lr", "weight_decay", "frame_loss_weight",
            "label_smoothing", "augment", "strong_augment", "clips_per_video", "select", "seed")  # fmt: skip
    return {k: run[k] for k in keys}


def _run_loso(spec, folds: list[int], out: Path, run: dict) -> dict | None:
    """Train and test every fold in ``folds`` into ``out/fold-KK``, skipping folds whose checkpoint
    already holds test metrics from the same settings; write and return ``out/summary.json``."""
    from vidshield import ddp
    from vidshield.errors import OutputError
    from vidshield.models.datasets import loso_datasets
    from vidshield.models.evaluation import fold_summary
    from vidshield.utils import atomic_write_json

    if out.exists() and not out.is_dir():
        raise OutputError(f"--out {out} must be a folder with --protocol loso")
    settings = _fold_settings(run)
    results = []
    for fold in folds:
        path = out / f"fold-{fold:02d}"
        done = _finished_fold(path.with_suffix(".json"), settings)
        if done is None:
            train, val, test, classes, info = loso_datasets(
                run["dataset"], spec, fold, root=run["root"], seed=run["seed"], augment=run["augment"],
                strong_augment=run["strong_augment"], cache=run["cache"],
            )  # fmt: skip
            if run["progress"]:
                click.echo(
                    f"fold {fold} (set{info['set']}): test sequence {fold}, validation sequence "
                    f"{info['val_sequence']}, {len(train)} / {len(val)} / {len(test)} clips",
                    err=True,
                )
            if _train_one(spec, train, val, test, classes, path, run, data_info=info) is None:
                continue
            done = _finished_fold(path.with_suffix(".json"), settings)
        results.append(done)
    if not ddp.world().is_main:
        return None
    summary = {"protocol": "loso", "settings": settings, **fold_summary(results)}
    atomic_write_json(out / "summary.json", summary)
    return summary


def _finished_fold(path: Path, settings: dict) -> dict | None:
    """The fold result stored in checkpoint JSON ``path`` when it finished (has test metrics) with
    ``settings``; None when it has not run or not finished.

    Raises:
        OutputError: it finished with other settings (the folder belongs to another run).
    """
    from vidshield.errors import OutputError
    from vidshield.jsonio import read_json

    if not path.is_file():
        return None
    meta = read_json(path, error=OutputError)
    metrics, data = meta.get("metrics") or {}, meta.get("dataset") or {}
    if "test_top1" not in metrics:
        return None
    if meta.get("run") != settings:
        raise OutputError(f"{path} was trained with other settings ({meta.get('run')}); pick another --out")
    return {
        "fold": data.get("fold"),
        "set": data.get("set"),
        "val_sequence": data.get("val_sequence"),
        "best_epoch": metrics.get("epoch"),
        "val_top1": metrics.get("val_top1"),
        "test_videos": data.get("test_videos"),
        **{k: metrics[k] for k in ("test_top1", "test_frame_top1", "test_clean_alpha") if k in metrics},
    }


def _loso_lines(summary: dict) -> list[str]:
    lines = []
    for f in summary["folds"]:
        line = f"fold {f['fold']:2d} (set{f['set']}): test top-1 {f['test_top1']:.3f}"
        if "test_frame_top1" in f:
            line += f", per-frame {f['test_frame_top1']:.3f}"
        lines.append(line + f" (best epoch {f['best_epoch']}, validation {f['val_top1']:.3f})")
    for name, part in summary["sets"].items():
        line = f"{name}: {part['folds']} folds, test top-1 mean {part['mean_top1']:.3f} +- {part['std_top1']:.3f}"
        if "mean_frame_top1" in part:
            line += f", per-frame {part['mean_frame_top1']:.3f}"
        lines.append(line)
    return lines

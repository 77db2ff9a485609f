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
    epochs,
    batch_size,
    lr,
    weight_decay,
    frame_loss_weight,
    val_fraction,
    num_videos,
    test_videos,
    augment,
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
    """
    from vidshield import ddp
    from vidshield.models import MODEL_REGISTRY, create_model, load_model, save_model
    from vidshield.models.datasets import dataset_for_spec, train_val_datasets
    from vidshield.models.evaluation import evaluate_classifier
    from vidshield.models.training import train_classifier

    require_root(dataset, root)
    dev = ddp.init_from_env(device) or resolve_device(device)
    ctx.call_on_close(ddp.close)
    seed_everything(seed)
    command_line = command_line_of(ctx)

    if model_name in MODEL_REGISTRY:
        model, init_from = None, None
        spec = create_model(model_name, num_classes=1).input_spec
    else:
        model = load_model(model_name)
        init_from, spec = str(model_name), model.input_spec
    synthetic_size = num_videos if dataset == "synthetic" else None
    train_set, val_set, classes = train_val_datasets(
        dataset,
        spec,
        root=root,
        val_fraction=val_fraction,
        num_videos=synthetic_size,
        seed=seed,
        augment=augment,
        cache=cache,
    )
    if model is None:
        model = create_model(model_name, num_classes=len(classes))
    elif model.num_classes != len(classes):
        raise click.BadParameter(
            f"{model_name} has {model.num_classes} classes but the {dataset} data set has {len(classes)}",
            param_hint="--model",
        )
    metadata = {
        "dataset": {
            "name": dataset,
            "root": str(root) if root else None,
            "train_videos": len(train_set),
            "val_videos": len(val_set) if val_set is not None else 0,
        },
        "seed": seed,
        "command": command_line,
        "initialised_from": init_from,
    }
    result = train_classifier(
        model,
        train_set,
        val_set,
        epochs=epochs,
        out=out,
        batch_size=batch_size,
        lr=lr,
        weight_decay=weight_decay,
        device=dev,
        resume=resume,
        seed=seed,
        amp=amp,
        num_workers=num_workers,
        frame_loss_weight=frame_loss_weight,
        class_names=classes,
        extra_metadata=metadata,
        progress=not as_json,
    )
    if not ddp.world().is_main:
        return 0
    summary = {"best_path": str(result["best_path"]), "last_path": str(result["last_path"]), "best": result["best"]}
    test_size = test_videos if dataset == "synthetic" else None
    if test_size != 0:
        best = load_model(result["best_path"], device=dev)
        test_set = dataset_for_spec(
            dataset, spec, split="test", root=root, num_videos=test_size, seed=seed, cache=cache
        )
        test = evaluate_classifier(
            best, test_set, batch_size=batch_size, device=dev, num_workers=num_workers, progress=not as_json
        )
        best.metadata["metrics"].update({f"test_{k}": test[k] for k in ("top1", "top5", "frame_top1") if k in test})
        best.metadata["dataset"]["test_videos"] = test["num_videos"]
        save_model(best, result["best_path"], metadata={k: v for k, v in best.metadata.items()})
        summary["test"] = {k: test[k] for k in ("top1", "top5", "frame_top1", "num_videos") if k in test}
    if as_json:
        echo_json(summary)
    else:
        click.echo(f"best checkpoint: {summary['best_path']} (epoch {result['best']['epoch']})")
        if "test" in summary:
            line = f"test top-1 {summary['test']['top1']:.4f}, top-5 {summary['test']['top5']:.4f}"
            if "frame_top1" in summary["test"]:
                line += f", per-frame top-1 {summary['test']['frame_top1']:.4f}"
            click.echo(line + f" on {summary['test']['num_videos']} videos")
    return 0

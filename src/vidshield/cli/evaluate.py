"""``vidshield evaluate``: accuracy of a trained classifier on a data set split."""

from __future__ import annotations

from pathlib import Path

import click

from vidshield.cli.options import device_option, echo_json, json_option, resolve_device, seed_option
from vidshield.models.datasets import DATASET_NAMES, dataset_for_spec


@click.command("evaluate")
@click.option("--model", "model_name", required=True, help="Shipped model name (see `vidshield models`) or checkpoint path.")
@click.option("--dataset", type=click.Choice(DATASET_NAMES), default="synthetic", show_default=True)
@click.option("--root", type=click.Path(path_type=Path), default=None, help="Data set root (not for synthetic).")
@click.option("--split", type=click.Choice(["train", "test"]), default="test", show_default=True)
@click.option("--num-videos", type=click.IntRange(min=1), default=500, show_default=True, help="Synthetic: number of clips.")
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True)
@click.option("--num-workers", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--cache", type=click.Path(path_type=Path), default=None, help="Frame cache folder for decoded data sets.")
@click.option("--confusion-png", type=click.Path(path_type=Path), default=None, help="Also write the confusion matrix as a PNG.")
@device_option
@seed_option
@json_option
def command(model_name, dataset, root, split, num_videos, batch_size, num_workers, cache, confusion_png, device, seed, as_json):
    """Top-1 / top-5, per-class accuracy and the confusion matrix of a classifier; for the CNN+LSTM
    also the per-frame (recurrence-removed) accuracy the detector relies on. Clips are built at the
    model's input size.

    \b
    Examples:
      vidshield evaluate --model synthetic-lrcn
      vidshield evaluate --model runs/ut-c3d.safetensors --dataset ut-interaction --root data/ut --json
      vidshield evaluate --model synthetic-c3d --confusion-png confusion.png
    """
    from rich.console import Console
    from rich.table import Table

    from vidshield.errors import CheckpointError
    from vidshield.models import load_model
    from vidshield.models.evaluation import evaluate_classifier, save_confusion_png

    if dataset != "synthetic" and root is None:
        raise click.UsageError(f"--root is required for --dataset {dataset}")
    dev = resolve_device(device)
    model = load_model(model_name, device=dev)
    data = dataset_for_spec(
        dataset, model.input_spec, split=split, root=root, num_videos=num_videos if dataset == "synthetic" else None,
        seed=seed, cache=cache,
    )
    classes = list(data.classes)
    if model.class_names is not None and list(model.class_names) != classes:
        raise CheckpointError(
            f"{model_name} was trained on classes {model.class_names} but the {dataset} data set has {classes}"
        )
    if model.class_names is None and model.num_classes != len(classes):
        raise CheckpointError(f"{model_name} has {model.num_classes} classes but the {dataset} data set has {len(classes)}")
    metrics = evaluate_classifier(model, data, batch_size=batch_size, device=dev, num_workers=num_workers,
                                  class_names=classes, progress=not as_json)
    if confusion_png is not None:
        save_confusion_png(metrics["confusion"], classes, confusion_png, title=f"{model_name} on {dataset} {split}")
    result = {"model": str(model_name), "architecture": model.arch_name, "dataset": dataset, "split": split, **metrics}
    if confusion_png is not None:
        result["confusion_png"] = str(confusion_png)
    if as_json:
        echo_json(result)
        return 0
    console = Console()
    line = f"{model_name} on {dataset} ({split}, {metrics['num_videos']} videos): top-1 {metrics['top1']:.4f}, top-5 {metrics['top5']:.4f}"
    if "frame_top1" in metrics:
        line += f", per-frame top-1 {metrics['frame_top1']:.4f}"
    console.print(line)
    per_class = Table(title="per-class accuracy")
    per_class.add_column("class")
    per_class.add_column("videos", justify="right")
    per_class.add_column("accuracy", justify="right")
    for row in metrics["per_class"]:
        per_class.add_row(row["class"], str(row["count"]), "-" if row["accuracy"] is None else f"{row['accuracy']:.3f}")
    console.print(per_class)
    confusion = Table(title="confusion (rows: true, columns: predicted)")
    confusion.add_column("")
    for j in range(len(classes)):
        confusion.add_column(str(j), justify="right")
    for i, row in enumerate(metrics["confusion"]):
        confusion.add_row(f"{i} {classes[i]}", *[str(v) if v else "." for v in row])
    console.print(confusion)
    if confusion_png is not None:
        console.print(f"confusion matrix written to {confusion_png}")
    return 0

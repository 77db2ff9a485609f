"""``vidshield evaluate``: accuracy of a trained classifier on a data set split."""

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
    seed_option,
)


class _ClipList:
    """Clips held in memory as a data set: items ``(video, label)`` and ``classes``."""

    def __init__(self, videos, labels, classes):
        self.videos, self.labels, self.classes = videos, labels.tolist(), classes

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.videos[i], self.labels[i]


def _adversarial_set(folder: Path, model) -> _ClipList:
    """An adversarial set from `vidshield attack` as a data set; its clips must fit the model."""
    from vidshield.attacks.dataset import load_adversarial_set

    videos, labels, _manifest = load_adversarial_set(folder)
    spec = model.input_spec
    if tuple(videos.shape[1:]) != (spec.frames, 3, spec.height, spec.width):
        raise click.BadParameter(
            f"{folder} holds clips of {tuple(videos.shape[1:])}; the model expects "
            f"({spec.frames}, 3, {spec.height}, {spec.width})",
            param_hint="--adversarial",
        )
    classes = list(model.class_names or range(model.num_classes))
    return _ClipList(videos, labels, classes)


@click.command("evaluate")
@click.option(
    "--model", "model_name", required=True, help="Shipped model name (see `vidshield models`) or checkpoint path."
)
@dataset_options
@click.option(
    "--adversarial",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Score the model on an adversarial (or clean) set from `vidshield attack` instead of --dataset.",
)
@click.option("--split", type=click.Choice(["train", "test"]), default="test", show_default=True)
@click.option(
    "--num-videos", type=click.IntRange(min=1), default=500, show_default=True, help="Synthetic: number of clips."
)
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True)
@num_workers_option
@cache_option
@click.option(
    "--confusion-png", type=click.Path(path_type=Path), default=None, help="Also write the confusion matrix as a PNG."
)
@device_option
@seed_option
@json_option
def command(
    model_name,
    dataset,
    root,
    adversarial,
    split,
    num_videos,
    batch_size,
    num_workers,
    cache,
    confusion_png,
    device,
    seed,
    as_json,
):
    """Top-1 / top-5, per-class accuracy and the confusion matrix of a classifier; for the CNN+LSTM
    also the per-frame (recurrence-removed) accuracy the detector relies on. Clips are built at the
    model's input size.

    \b
    Examples:
      vidshield evaluate --model synthetic-lrcn
      vidshield evaluate --model runs/ut-c3d.safetensors --dataset ut-interaction --root data/ut --json
      vidshield evaluate --model synthetic-c3d --confusion-png confusion.png
      vidshield evaluate --model synthetic-lrcn --adversarial adv/dense   # a C3D attack shown to the CNN+LSTM
    """
    from rich.console import Console
    from rich.table import Table

    from vidshield.errors import CheckpointError
    from vidshield.models import load_model
    from vidshield.models.datasets import dataset_for_spec
    from vidshield.models.evaluation import evaluate_classifier, save_confusion_png

    if adversarial is None:
        require_root(dataset, root)
    dev = resolve_device(device)
    model = load_model(model_name, device=dev)
    if adversarial is not None:
        data, dataset, split = _adversarial_set(adversarial, model), f"adversarial set {adversarial}", "all"
    else:
        data = dataset_for_spec(
            dataset,
            model.input_spec,
            split=split,
            root=root,
            num_videos=num_videos if dataset == "synthetic" else None,
            seed=seed,
            cache=cache,
        )
    classes = list(data.classes)
    if model.class_names is not None and list(model.class_names) != classes:
        raise CheckpointError(
            f"{model_name} was trained on classes {model.class_names} but the {dataset} data set has {classes}"
        )
    if model.class_names is None and model.num_classes != len(classes):
        raise CheckpointError(
            f"{model_name} has {model.num_classes} classes but the {dataset} data set has {len(classes)}"
        )
    metrics = evaluate_classifier(
        model,
        data,
        batch_size=batch_size,
        device=dev,
        num_workers=num_workers,
        class_names=classes,
        progress=not as_json,
    )
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
    if "clean_alpha" in metrics:
        line += f", mean alpha {metrics['clean_alpha']:.4f}"
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

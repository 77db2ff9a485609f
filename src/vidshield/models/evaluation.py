"""Classification metrics of a video classifier on a data set: top-1, top-5, per-class accuracy,
confusion matrix and, for models with a per-frame path, the per-frame (recurrence-removed)
accuracy that the detector relies on."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from vidshield.data import make_loader
from vidshield.models.base import VideoClassifier
from vidshield.utils import eval_mode, progress_bar


def classification_metrics(
    logits: torch.Tensor,
    labels: torch.Tensor,
    *,
    class_names: list[str] | None = None,
) -> dict:
    """Metrics from stacked logits.

    Args:
        logits: ``(N, K)`` video logits.
        labels: ``int64 (N,)`` true classes in [0, K).
        class_names: K names for the per-class rows (default: the indices as strings).

    Returns:
        ``dict(top1, top5, per_class, confusion, num_videos)``: accuracies in [0, 1]; ``top5`` is
        top-min(5, K); ``per_class`` is a list of ``{class, index, count, accuracy}`` (accuracy
        ``None`` for a class with no videos); ``confusion[i][j]`` counts videos of class i predicted
        as j.
    """
    if logits.dim() != 2 or labels.shape != (logits.shape[0],):
        raise ValueError(f"logits must be (N, K) and labels (N,); got {tuple(logits.shape)} and {tuple(labels.shape)}")
    n, k = logits.shape
    names = list(class_names) if class_names is not None else [str(i) for i in range(k)]
    if len(names) != k:
        raise ValueError(f"{len(names)} class names for {k} classes")
    labels = labels.long()
    if n == 0:
        raise ValueError("cannot evaluate on an empty data set")
    predictions = logits.argmax(dim=1)
    topk = logits.topk(min(5, k), dim=1).indices
    confusion = torch.zeros(k, k, dtype=torch.long)
    confusion.index_put_((labels, predictions), torch.ones_like(labels), accumulate=True)
    counts = confusion.sum(dim=1)
    per_class = [
        {
            "class": names[i],
            "index": i,
            "count": int(counts[i]),
            "accuracy": float(confusion[i, i] / counts[i]) if counts[i] > 0 else None,
        }
        for i in range(k)
    ]
    return {
        "top1": float((predictions == labels).float().mean()),
        "top5": float((topk == labels[:, None]).any(dim=1).float().mean()),
        "per_class": per_class,
        "confusion": confusion.tolist(),
        "num_videos": n,
    }


@torch.no_grad()
def evaluate_classifier(
    model: VideoClassifier,
    dataset: Dataset,
    *,
    batch_size: int = 16,
    device: str | torch.device = "cpu",
    num_workers: int = 0,
    class_names: list[str] | None = None,
    progress: bool = False,
) -> dict:
    """Evaluate ``model`` (in eval mode; its mode is restored afterwards) on ``dataset``.

    Args:
        model: a :class:`VideoClassifier` on ``device``.
        dataset: items ``(video (T, 3, H, W) in [0, 1], label int)`` matching ``model.input_spec``.
        class_names: names for the per-class rows (default: ``dataset.classes`` if present).

    Returns:
        :func:`classification_metrics`'s dict, plus ``frame_top1`` (accuracy of the per-frame,
        recurrence-removed labels over all frames) and ``clean_alpha`` (mean exception index of
        those labels, Eq. 1; the data set is taken as clean) when ``model.has_frame_logits``.
    """
    from vidshield.detection.exception import exception_index

    if class_names is None:
        class_names = getattr(dataset, "classes", None) or model.class_names
    loader = make_loader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    all_logits, all_labels = [], []
    frame_correct = frame_total = 0
    alphas = []
    with eval_mode(model), progress_bar(disable=not progress) as bar:
        task = bar.add_task("evaluating", total=len(loader))
        for videos, labels in loader:
            videos = videos.to(device, non_blocking=True)
            labels = torch.as_tensor(labels).long()
            if model.has_frame_logits:
                logits, frame_logits = model.forward_with_frames(videos)
                frame_pred = frame_logits.argmax(dim=2).cpu()
                frame_correct += int((frame_pred == labels[:, None]).sum())
                frame_total += frame_pred.numel()
                if frame_pred.shape[1] >= 3:
                    alphas.append(exception_index(frame_pred)[0])
            else:
                logits = model(videos)
            all_logits.append(logits.float().cpu())
            all_labels.append(labels)
            bar.advance(task)
    metrics = classification_metrics(torch.cat(all_logits), torch.cat(all_labels), class_names=class_names)
    if model.has_frame_logits:
        metrics["frame_top1"] = frame_correct / frame_total
        if alphas:
            metrics["clean_alpha"] = float(torch.cat(alphas).mean())
    return metrics


def fold_summary(folds: list[dict]) -> dict:
    """Mean and spread of cross-validation folds.

    Args:
        folds: one dict per fold with ``fold``, ``set`` and ``test_top1`` (optionally
            ``test_frame_top1``, ``test_clean_alpha``).

    Returns:
        ``dict(folds (sorted by fold), sets={"set1": {...}, "all": {...}})``, each part with
        ``folds`` (count), ``mean_top1``, ``std_top1`` (population standard deviation over folds),
        ``min_top1``, ``max_top1`` and the means of the optional metrics. ``all`` only when
        folds of both sets are present.
    """
    folds = sorted(folds, key=lambda f: f["fold"])
    groups = {f"set{s}": [f for f in folds if f["set"] == s] for s in sorted({f["set"] for f in folds})}
    if len(groups) > 1:
        groups["all"] = folds

    def part(items: list[dict]) -> dict:
        top1 = torch.tensor([f["test_top1"] for f in items], dtype=torch.float64)
        out = {
            "folds": len(items),
            "mean_top1": float(top1.mean()),
            "std_top1": float(top1.std(unbiased=False)),
            "min_top1": float(top1.min()),
            "max_top1": float(top1.max()),
        }
        for key in ("test_frame_top1", "test_clean_alpha"):
            if all(key in f for f in items):
                out["mean_" + key.removeprefix("test_")] = sum(f[key] for f in items) / len(items)
        return out

    return {"folds": folds, "sets": {name: part(items) for name, items in groups.items() if items}}


def save_confusion_png(confusion: list[list[int]], class_names: list[str], path, *, title: str = "") -> None:
    """Write the confusion matrix (rows: true class, columns: predicted; cells normalised per
    row, counts written in the cells) as a PNG with matplotlib's Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    counts = np.asarray(confusion, dtype=np.int64)
    k = counts.shape[0]
    if counts.shape != (k, k) or len(class_names) != k:
        raise ValueError(f"confusion must be K x K with K class names; got {counts.shape} and {len(class_names)} names")
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    size = max(4.0, 0.45 * k + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(k), class_names, rotation=90, fontsize=7)
    ax.set_yticks(range(k), class_names, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if k <= 30:
        for i in range(k):
            for j in range(k):
                if counts[i, j]:
                    ax.text(
                        j,
                        i,
                        str(counts[i, j]),
                        ha="center",
                        va="center",
                        fontsize=6,
                        color="white" if rates[i, j] > 0.5 else "black",
                    )
    if title:
        ax.set_title(title)
    fig.tight_layout()
    from pathlib import Path

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)

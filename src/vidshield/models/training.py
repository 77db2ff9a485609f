"""Training loop for the victim classifiers: AdamW, a cosine learning-rate schedule (stepped per
batch), validation every epoch, the best model kept, and a resumable "last" checkpoint.

Files written for ``out = runs/c3d``:

- ``runs/c3d.safetensors`` + ``.json``: the best model so far (highest validation top-1, ties
  broken by the per-frame accuracy), loadable with :func:`vidshield.models.load_model`.
- ``runs/c3d-last.safetensors`` + ``.json``: model, optimizer and scheduler state after the last
  finished epoch (:func:`vidshield.checkpoint.save_training_state`: nothing is pickled).

Resuming reproduces an uninterrupted run: epoch ``e`` shuffles with ``seed + e`` and seeds torch
(dropout) with ``seed + e``, so the data order and dropout masks do not depend on earlier epochs.

For models with a per-frame path (the CNN+LSTM), the loss is
``CE(video logits) + frame_loss_weight * CE(zero-state per-frame logits)``, so the detection
network (the recurrence-removed LSTM) is trained to label single frames as well.

Under ``torchrun`` (see :mod:`vidshield.ddp`) ``batch_size`` is the global batch,
split over the processes; the run equals one process with that batch (up to float rounding;
on CPUs BatchNorm and dropout are per process). Rank 0 validates and writes the checkpoints,
which resume on any number of processes.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from vidshield import ddp
from vidshield.checkpoint import checkpoint_paths, last_state_path, load_training_state, save_training_state
from vidshield.data import make_loader
from vidshield.errors import CheckpointError
from vidshield.jsonio import field
from vidshield.models.base import VideoClassifier
from vidshield.models.checkpoints import model_metadata, save_model
from vidshield.models.evaluation import evaluate_classifier
from vidshield.text import printable
from vidshield.utils import progress_bar


def classification_loss(
    model: VideoClassifier,
    videos: torch.Tensor,
    labels: torch.Tensor,
    *,
    frame_loss_weight: float,
    label_smoothing: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Training loss and video logits.

    ``CE(video logits, labels)``, plus ``frame_loss_weight * CE(per-frame logits, labels)`` over
    all frames when the model has a per-frame path and the weight is > 0; both with
    ``label_smoothing`` in [0, 1).

    Returns:
        ``(loss (scalar), video logits (N, K))``.
    """
    if model.has_frame_logits and frame_loss_weight > 0:
        logits, frame_logits = model.forward_with_frames(videos)
        t = frame_logits.shape[1]
        frame_loss = F.cross_entropy(
            frame_logits.flatten(0, 1).float(), labels.repeat_interleave(t), label_smoothing=label_smoothing
        )
        video_loss = F.cross_entropy(logits.float(), labels, label_smoothing=label_smoothing)
        return video_loss + frame_loss_weight * frame_loss, logits
    logits = model(videos)
    return F.cross_entropy(logits.float(), labels, label_smoothing=label_smoothing), logits


def _selection_key(metrics: dict) -> tuple[float, float]:
    return (metrics.get("val_top1", 0.0), metrics.get("val_frame_top1", 0.0))


def _train_one_epoch(trainer, loader, optimizer, scheduler, *, device, amp, max_grad_norm, bar, task, weights=None):
    """One epoch. ``trainer(videos, labels) -> (loss, logits)``; ``weights``: per step, ``(items,
    loss scale)`` of this process's share of the global batch (:func:`ddp.shard_loader`), or None."""
    trainer.train()
    total_loss, correct, seen = 0.0, 0, 0
    for step, (videos, labels) in enumerate(loader):
        videos = videos.to(device, non_blocking=True)
        labels = torch.as_tensor(labels).long().to(device)
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=amp):
            loss, logits = trainer(videos, labels)
        optimizer.zero_grad(set_to_none=True)
        n, scale = (labels.shape[0], None) if weights is None else weights[step]
        (loss if scale is None else loss * scale).backward()
        if max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(trainer.parameters(), max_grad_norm)
        optimizer.step()
        scheduler.step()
        total_loss += float(loss.detach()) * n
        correct += int((logits.detach()[:n].argmax(dim=1) == labels[:n]).sum())
        seen += n
        bar.update(task, advance=1, loss=f"{total_loss / max(seen, 1):.4f}")
    total_loss, correct, seen = ddp.all_sum([total_loss, correct, seen])
    return {"train_loss": total_loss / seen, "train_top1": correct / seen}


def train_classifier(
    model: VideoClassifier,
    train_set: Dataset,
    val_set: Dataset | None = None,
    *,
    epochs: int,
    out: str | Path,
    batch_size: int = 16,
    lr: float = 1e-3,
    weight_decay: float = 1e-4,
    device: str | torch.device = "cpu",
    resume: bool = False,
    seed: int = 0,
    amp: bool = False,
    num_workers: int = 0,
    frame_loss_weight: float = 1.0,
    label_smoothing: float = 0.0,
    max_grad_norm: float | None = 5.0,
    class_names: list[str] | None = None,
    extra_metadata: dict | None = None,
    progress: bool = True,
    select: str = "best",
) -> dict:
    """Train ``model`` in place and keep its best and last checkpoints under ``out``.

    Args:
        model: a model from :func:`vidshield.models.create_model`; moved to ``device``.
        train_set, val_set: items ``(video (T, 3, H, W) in [0, 1], label int)`` matching the
            model's input spec. Without ``val_set`` the last epoch counts as the best.
        epochs: total number of epochs (also when resuming).
        batch_size: the global batch (under torchrun, split over the processes).
        out: path of the best checkpoint (``x`` -> ``x.safetensors`` + ``x.json``); the
            resumable state goes to ``x-last.*``.
        lr, weight_decay: AdamW settings; the learning rate follows a cosine from ``lr`` to 0 over
            all training steps.
        resume: continue from ``x-last.*`` when it exists (else start fresh).
        seed: shuffling and dropout seed (the model's initial weights are the caller's).
        amp: bf16 autocast (CUDA only; ignored on CPU).
        frame_loss_weight: weight of the per-frame loss for models with ``has_frame_logits``.
        label_smoothing: of both cross-entropies, in [0, 1).
        max_grad_norm: gradient-norm clip (``None``: no clipping).
        class_names: stored in the checkpoints (default: ``train_set.classes`` if present).
        extra_metadata: extra JSON fields for the best checkpoint (data set, command line...).
        progress: show rich progress bars and one summary line per epoch.
        select: ``"best"`` keeps the epoch of the highest validation top-1 (then per-frame top-1);
            ``"last"`` keeps the last epoch (validation is still reported): for a validation set
            too small to choose an epoch by (UT-Interaction's LOSO folds hold 6 clips).

    Returns:
        ``dict(best_path, last_path, best (metrics of the best epoch), history (one dict per
        epoch), epochs_run (epochs trained in this call))``.

    Raises:
        ValueError: bad arguments. CheckpointError: the saved state does not match this run.
    """
    if epochs < 1 or batch_size < 1 or lr <= 0:
        raise ValueError(f"epochs and batch_size must be >= 1 and lr > 0; got {epochs}, {batch_size}, {lr}")
    if not 0 <= label_smoothing < 1:
        raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
    if len(train_set) == 0:
        raise ValueError("the training set is empty")
    if select not in ("best", "last"):
        raise ValueError(f"select must be 'best' or 'last', got {select!r}")
    world = ddp.world()
    if batch_size < world.size:
        raise ValueError(f"the global batch ({batch_size}) is smaller than the number of processes ({world.size})")
    device = torch.device(device)
    amp = bool(amp and device.type == "cuda")
    class_names = class_names if class_names is not None else getattr(train_set, "classes", None)
    if class_names is not None:
        class_names = list(class_names)
        if len(class_names) != model.num_classes:
            raise ValueError(f"{len(class_names)} class names for a model with {model.num_classes} classes")
        model.class_names = class_names
    model.to(device)
    best_path, _ = checkpoint_paths(out)
    last_path = last_state_path(out)
    steps_per_epoch = -(-len(train_set) // batch_size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * steps_per_epoch)
    settings = {
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "weight_decay": weight_decay,
        "seed": seed,
        "amp": amp,
        "frame_loss_weight": frame_loss_weight,
        "label_smoothing": label_smoothing,
        "max_grad_norm": max_grad_norm,
        "select": select,
        "train_videos": len(train_set),
        "val_videos": len(val_set) if val_set is not None else 0,
        "processes": world.size,
    }

    history: list[dict] = []
    best: dict | None = None
    start_epoch = 0
    if resume and last_path.is_file():
        meta = load_training_state(
            last_path,
            model=model,
            optimizer=optimizer,
            scheduler=scheduler,
            check=_check_resumable(last_path, model, epochs),
        )
        start_epoch, history, best = meta["epoch"], list(meta["history"]), meta["best"]
    loss_fn = functools.partial(
        classification_loss, frame_loss_weight=frame_loss_weight, label_smoothing=label_smoothing
    )
    trainer = ddp.wrap(ddp.LossModule(model, loss_fn), device)

    progress = progress and world.is_main
    epochs_run = 0
    with progress_bar("loss {task.fields[loss]}", disable=not progress) as bar:
        if progress and world.distributed:
            bar.console.print(
                f"{world.size} processes: global batch {batch_size} (about {batch_size // world.size} per process), lr {lr}"
            )
        for epoch in range(start_epoch, epochs):
            started = time.perf_counter()
            torch.manual_seed(seed + epoch)
            loader = make_loader(
                train_set,
                batch_size=batch_size,
                shuffle=True,
                num_workers=num_workers,
                seed=seed + epoch,
                pin_memory=device.type == "cuda",
            )
            weights = None
            if world.distributed:
                loader, weights = ddp.shard_loader(loader, world)
            task = bar.add_task(f"epoch {epoch + 1}/{epochs}", total=len(loader), loss="-")
            metrics = {"epoch": epoch + 1, "lr": scheduler.get_last_lr()[0]}
            metrics.update(
                _train_one_epoch(
                    trainer,
                    loader,
                    optimizer,
                    scheduler,
                    device=device,
                    amp=amp,
                    max_grad_norm=max_grad_norm,
                    bar=bar,
                    task=task,
                    weights=weights,
                )
            )
            bar.remove_task(task)
            if val_set is not None and len(val_set) > 0:
                val = {}
                if world.is_main:
                    val = evaluate_classifier(
                        model, val_set, batch_size=batch_size, device=device, num_workers=num_workers
                    )
                val = ddp.broadcast({k: val[k] for k in ("top1", "frame_top1") if k in val})
                metrics["val_top1"] = val["top1"]
                if "frame_top1" in val:
                    metrics["val_frame_top1"] = val["frame_top1"]
            metrics["seconds"] = round(time.perf_counter() - started, 2)
            history.append(metrics)
            epochs_run += 1
            if best is None or val_set is None or select == "last" or _selection_key(metrics) > _selection_key(best):
                best = dict(metrics)
                if world.is_main:
                    save_model(
                        model,
                        best_path,
                        metadata={**(extra_metadata or {}), "metrics": best, "training": settings, "history": history},
                    )
            if world.is_main:
                save_training_state(
                    last_path,
                    model=model,
                    optimizer=optimizer,
                    scheduler=scheduler,
                    metadata={
                        "model": model_metadata(model),
                        "epoch": epoch + 1,
                        "history": history,
                        "best": best,
                        "settings": settings,
                    },
                )
            if world.is_main:
                plot_learning_curve(history, learning_curve_path(out), epochs=epochs)
            if progress:
                this_call = history[-epochs_run:]
                eta = sum(m["seconds"] for m in this_call) / epochs_run * (epochs - epoch - 1)
                bar.console.print(
                    f"epoch {epoch + 1}/{epochs}: "
                    + ", ".join(
                        f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
                        for k, v in metrics.items()
                        if k != "epoch"
                    )
                    + f", eta {format_duration(eta)}"
                )
    ddp.finish()
    return {"best_path": best_path, "last_path": last_path, "best": best, "history": history, "epochs_run": epochs_run}


def learning_curve_path(out: str | Path) -> Path:
    """Where :func:`train_classifier` draws its learning curve: ``x.curve.png`` beside ``x.safetensors``."""
    return checkpoint_paths(out)[0].with_suffix(".curve.png")


def format_duration(seconds: float) -> str:
    """``"1h 05m"``, ``"4m 10s"`` or ``"12s"``."""
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 60}m {s % 60:02d}s" if s >= 60 else f"{s}s"


def plot_learning_curve(history: list[dict], path: str | Path, *, epochs: int | None = None) -> Path:
    """The training loss (left) and the train / validation top-1 (right) of every epoch so far,
    as a PNG (rewritten after each epoch, so an unfinished run has one too).

    Args:
        history: one dict per epoch with ``epoch``, ``train_loss``, ``train_top1`` and, when
            validated, ``val_top1`` (and ``val_frame_top1``), as :func:`train_classifier` keeps it.
        epochs: the run's planned length (the x axis spans it), default the epochs so far.
    """
    from vidshield.plotting import PLAIN, new_figure, save_figure

    x = [m["epoch"] for m in history]
    fig = new_figure(8.0, 3.0)
    loss_ax, acc_ax = fig.subplots(1, 2)
    loss_ax.plot(x, [m["train_loss"] for m in history], "o-", ms=3, label="train")
    loss_ax.set_ylabel("loss", **PLAIN)
    acc_ax.plot(x, [m["train_top1"] for m in history], "o-", ms=3, label="train top-1")
    for key, label in (("val_top1", "validation top-1"), ("val_frame_top1", "validation per-frame top-1")):
        if any(key in m for m in history):
            acc_ax.plot([m["epoch"] for m in history if key in m], [m[key] for m in history if key in m], "o-",
                        ms=3, label=label)  # fmt: skip
    acc_ax.set_ylim(0, 1.02)
    acc_ax.set_ylabel("top-1", **PLAIN)
    for ax in (loss_ax, acc_ax):
        ax.set_xlabel("epoch", **PLAIN)
        ax.set_xlim(0.5, max(epochs or 0, x[-1]) + 0.5)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return save_figure(fig, path, 100)


def _check_resumable(path, model, epochs: int):
    """A ``check`` for :func:`load_training_state`: the same architecture, classes and epochs."""

    def check(meta: dict) -> None:
        what = dict(what=f"training state {path}", error=CheckpointError)
        saved, current = field(meta, "model", dict, **what), model_metadata(model)
        for key in ("architecture", "arch_config", "num_classes"):
            if saved.get(key) != current[key]:
                raise CheckpointError(
                    f"cannot resume from {path}: it was made for {key} = {printable(repr(saved.get(key)))[:80]}, "
                    f"this run has {current[key]!r}"
                )
        saved_epochs = field(field(meta, "settings", dict, **what), "epochs", int, lo=1, **what)
        if saved_epochs != epochs:
            raise CheckpointError(
                f"cannot resume from {path}: it was made for {saved_epochs} epochs "
                f"(the cosine schedule depends on it); pass --epochs {saved_epochs}"
            )
        field(meta, "epoch", int, lo=0, hi=epochs, **what)
        field(meta, "history", list, max_len=epochs, items=dict, **what)
        field(meta, "best", (dict, type(None)), **what)

    return check

"""A detection network for any classifier, trained by distillation (``vidshield train-detector``).

The paper's detector labels every frame with the CNN+LSTM's recurrence-free path, so it speaks
the CNN+LSTM's label space. To protect another classifier (a C3D, an X3D, a video transformer),
:func:`train_detector` trains a per-frame network, any registered architecture with a per-frame
path (``lrcn-small``: the frame CNN of the paper's CNN+LSTM, an LSTM cell from a zero state and a
linear layer), to predict **for every single frame** the label the classifier gives the whole
clip:

    loss = tau^2 * KL(softmax(c / tau) || softmax(f_t / tau))          per frame t, averaged
         + gt_weight * CE(f_t, y)                                        when ground truth y exists
         + video_weight * tau^2 * KL(softmax(c / tau) || softmax(v / tau))

with ``c`` the classifier's clip logits (its own view of the clip), ``f_t`` the network's
per-frame logits and ``v`` its recurrent video logits (so the saved CNN+LSTM is also a coherent
classifier). Ground truth is mixed in only when the data set's classes are the classifier's.

Adversarial training (Madry et al. 2018; beyond the paper, issue 13): with ``adversarial_eps > 0``
every batch is replaced by its l_inf PGD examples (:func:`frame_pgd`: random start,
``adversarial_steps`` steps of ``2.5 eps / steps``, on the summed per-frame cross-entropy against
the classifier's clip label) before the loss above; the teacher still sees the clean clip. The
per-frame path sees each frame on its own, so this clip-level PGD is per-frame PGD. A robust
per-frame network is what the pipeline's vote needs against an attacker who changes every frame.

The result is an ordinary model checkpoint (safetensors + JSON, loadable with
:func:`~vidshield.models.load_model`) whose JSON has a ``"serves"`` entry: the classifier's
reference, its :func:`~vidshield.models.adapter.classifier_hash`, class names and input spec.
:func:`check_pairing` refuses to pair it with another classifier unless told to.
Training is resumable (``OUT-last.*``, nothing pickled) and shows a progress bar.

Under ``torchrun`` (see :mod:`vidshield.ddp`) ``batch_size`` is the global batch, split over the
processes (each runs the classifier on its share); the run equals one process with that batch
(up to float rounding; on CPUs BatchNorm is per process). Rank 0 writes the checkpoints, which
resume on any number of processes.
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
from vidshield.errors import CheckpointError, VidshieldError
from vidshield.jsonio import field
from vidshield.models.adapter import classifier_hash, resample_video
from vidshield.models.base import VideoClassifier
from vidshield.models.checkpoints import model_metadata, save_model
from vidshield.text import printable
from vidshield.utils import eval_mode, module_device, progress_bar

__all__ = [
    "PairingError",
    "served_classifier",
    "check_pairing",
    "distillation_loss",
    "frame_pgd",
    "train_detector",
    "agreement",
]


class PairingError(VidshieldError):
    """A detection network trained for one classifier paired with another."""


def served_classifier(detector_model: torch.nn.Module) -> dict | None:
    """The ``"serves"`` entry of a distilled detection network's metadata (None for others), its
    ``ref`` (a string or null) and ``sha256`` (a string) checked.

    Raises:
        CheckpointError: a ``"serves"`` entry of the wrong shape.
    """
    meta = getattr(detector_model, "metadata", None) or {}
    if not isinstance(meta, dict) or meta.get("serves") is None:
        return None
    what = "the detection network's metadata"
    serves = field(meta, "serves", dict, what=what, error=CheckpointError)
    check = dict(what=f"{what}: 'serves'", error=CheckpointError)
    field(serves, "ref", (str, type(None)), max_len=4096, **check)
    field(serves, "sha256", str, max_len=64, **check)
    return serves


def check_pairing(detector_model: torch.nn.Module, classifier: torch.nn.Module, *, allow_mismatch: bool = False) -> str:
    """Check that ``detector_model`` was trained for ``classifier``.

    Returns:
        ``"same-model"`` (the classifier is the detection network itself), ``"paired"`` (hash
        matches), ``"unrecorded"`` (a detection network that records no classifier, e.g. a
        shipped CNN+LSTM: its own label space) or ``"mismatch-allowed"``.

    Raises:
        PairingError: the detector records another classifier's hash (unless ``allow_mismatch``).
    """
    if classifier is detector_model:
        return "same-model"
    serves = served_classifier(detector_model)
    if serves is None:
        return "unrecorded"
    digest = classifier_hash(classifier)
    if digest == serves.get("sha256"):
        return "paired"
    if allow_mismatch:
        return "mismatch-allowed"
    raise PairingError(
        f"the detection network was trained for classifier {printable(repr(serves.get('ref')))} "
        f"(sha256 {printable(serves['sha256'][:12])}), not for this one (sha256 {digest[:12]}); "
        "train one with `vidshield train-detector` or pass --allow-mismatch"
    )


def distillation_loss(
    frame_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    *,
    tau: float = 2.0,
    labels: torch.Tensor | None = None,
    gt_weight: float = 0.0,
    video_logits: torch.Tensor | None = None,
    video_weight: float = 0.0,
) -> torch.Tensor:
    """The loss of the module docstring.

    Shape:
        frame_logits ``(N, T, K)``, teacher_logits ``(N, K)``, labels ``int64 (N,)``,
        video_logits ``(N, K)`` -> scalar.
    """
    n, t, k = frame_logits.shape
    if tuple(teacher_logits.shape) != (n, k):
        raise ValueError(f"teacher logits must be (N, K) = ({n}, {k}); got {tuple(teacher_logits.shape)}")
    soft = F.softmax(teacher_logits.float() / tau, dim=-1)
    per_frame = soft.unsqueeze(1).expand(n, t, k).reshape(n * t, k)
    student = F.log_softmax(frame_logits.float().reshape(n * t, k) / tau, dim=-1)
    loss = tau * tau * F.kl_div(student, per_frame, reduction="batchmean")
    if labels is not None and gt_weight > 0:
        loss = loss + gt_weight * F.cross_entropy(frame_logits.float().reshape(n * t, k), labels.repeat_interleave(t))
    if video_logits is not None and video_weight > 0:
        v = F.log_softmax(video_logits.float() / tau, dim=-1)
        loss = loss + video_weight * tau * tau * F.kl_div(v, soft, reduction="batchmean")
    return loss


def _student_loss(student, videos, teacher, labels, *, tau, gt_weight, video_weight):
    """``(loss, per-frame logits)`` of the student on its own view of ``videos`` (a
    :class:`ddp.LossModule` loss: the whole forward inside the module DDP wraps)."""
    v, f = student.forward_with_frames(resample_video(videos, student.input_spec, time=False))
    loss = distillation_loss(
        f, teacher, tau=tau, labels=labels, gt_weight=gt_weight, video_logits=v, video_weight=video_weight
    )
    return loss, f


def frame_pgd(
    model: VideoClassifier,
    videos: torch.Tensor,
    labels: torch.Tensor,
    *,
    eps: float,
    steps: int,
    step_size: float | None = None,
) -> torch.Tensor:
    """l_inf PGD (Madry et al. 2018) on the per-frame path: from a uniform random start in the
    eps ball, ``steps`` signed-gradient steps of ``step_size`` (default ``2.5 eps / steps``) up the
    summed cross-entropy of every frame's logits against its clip's label, each projected back
    into the ball and [0, 1]. The model runs in eval mode (BatchNorm statistics untouched); its
    gradients are not touched. Random start from torch's global generator.

    Shape:
        videos ``float (N, T, 3, H, W)`` in [0, 1] (any size: the model gets its own view),
        labels ``int64 (N,)`` -> ``float (N, T, 3, H, W)`` with ``|adv - videos| <= eps``, in [0, 1].
    """
    if eps <= 0 or steps < 1:
        raise ValueError(f"need eps > 0 and steps >= 1, got eps={eps}, steps={steps}")
    step_size = 2.5 * eps / steps if step_size is None else step_size
    x = videos.detach()
    labels = labels.to(x.device)
    adv = (x + (torch.rand_like(x) * 2 - 1) * eps).clamp(0.0, 1.0)
    with eval_mode(model), torch.enable_grad():
        for _ in range(steps):
            adv.requires_grad_(True)
            f = model.frame_logits(resample_video(adv, model.input_spec, time=False))
            loss = F.cross_entropy(f.float().flatten(0, 1), labels.repeat_interleave(f.shape[1]), reduction="sum")
            (grad,) = torch.autograd.grad(loss, adv)
            with torch.no_grad():
                adv = adv.detach() + step_size * grad.sign()
                adv = torch.minimum(torch.maximum(adv, x - eps), x + eps).clamp(0.0, 1.0)
    return adv.detach()


def agreement(
    detector_model: VideoClassifier,
    classifier: torch.nn.Module,
    videos: torch.Tensor,
    *,
    labels: torch.Tensor | None = None,
    attack_eps: float = 0.0,
    attack_steps: int = 20,
    batch_size: int = 8,
) -> dict:
    """How often the per-frame labels agree with the classifier's clip label (and, given
    ``labels``, with the ground truth), on the clean clips and, with ``attack_eps > 0``, under
    :func:`frame_pgd` (``attack_steps`` steps, against the classifier's label: the attacker of the
    vote who changes every frame).

    Args:
        videos: ``float (N, T, 3, H, W)`` in [0, 1] (any size: each model gets its own view).
        labels: ``int64 (N,)`` ground truth, or None.

    Returns:
        ``{"frame_agreement": share of frames whose label is the classifier's clip label,
        "clip_agreement": share of clips whose majority frame label is it, "clips": N}``, plus
        ``frame_accuracy`` (with ``labels``), ``robust_frame_agreement`` / ``robust_clip_agreement``
        (with ``attack_eps``) and ``robust_frame_accuracy`` (both), ``attack_eps``, ``attack_steps``.
    """
    counts: dict[str, int] = {}

    def add(key, value):
        counts[key] = counts.get(key, 0) + int(value)

    with eval_mode(classifier), eval_mode(detector_model):
        for i in range(0, videos.shape[0], batch_size):
            x = videos[i : i + batch_size]
            with torch.no_grad():
                c = classifier(resample_video(x.to(module_device(classifier)), classifier.input_spec))
            c = c.argmax(-1).cpu()
            views = [("", x)]
            if attack_eps > 0:
                dev = module_device(detector_model)
                views.append(("robust_", frame_pgd(detector_model, x.to(dev), c, eps=attack_eps, steps=attack_steps)))
            for prefix, v in views:
                with torch.no_grad():
                    d_in = resample_video(v, detector_model.input_spec, time=False).to(module_device(detector_model))
                    f = detector_model.frame_logits(d_in).argmax(-1).cpu()
                add(prefix + "frame_agreement", (f == c[:, None]).sum())
                add(prefix + "clip_agreement", (torch.mode(f, dim=1).values == c).sum())
                if labels is not None:
                    add(prefix + "frame_accuracy", (f == labels[i : i + batch_size, None].cpu()).sum())
            add("frames", f.numel())
    n, frames = videos.shape[0], counts.pop("frames")
    out = {k: v / (n if "clip" in k else frames) for k, v in counts.items()}
    out["clips"] = int(n)
    if attack_eps > 0:
        out.update(attack_eps=attack_eps, attack_steps=attack_steps)
    return out


def train_detector(
    student: VideoClassifier,
    classifier: torch.nn.Module,
    train_set: Dataset,
    *,
    out: str | Path,
    epochs: int = 5,
    batch_size: int = 16,
    lr: float = 2e-3,
    weight_decay: float = 1e-4,
    tau: float = 2.0,
    gt_weight: float = 0.5,
    video_weight: float = 0.5,
    use_labels: bool = False,
    adversarial_eps: float = 0.0,
    adversarial_steps: int = 5,
    classifier_ref: str | None = None,
    device: str | torch.device = "cpu",
    resume: bool = False,
    seed: int = 0,
    extra_metadata: dict | None = None,
    progress: bool = True,
) -> dict:
    """Distil ``classifier`` into the per-frame network ``student``, in place.

    Args:
        student: a fresh model with a per-frame path (``create_model("lrcn-small", num_classes=K)``)
            whose K is the classifier's; its ``input_spec`` is the detector's view.
        classifier: the model to serve (frozen; its own view of each clip).
        train_set: items ``(video (T, 3, H, W) in [0, 1], label)``, at any size (each model is
            given its own view).
        out: checkpoint path (``OUT.safetensors`` + ``OUT.json``; resumable state ``OUT-last.*``).
        epochs, batch_size, lr, weight_decay: AdamW with a cosine schedule stepped per batch
            (``batch_size``: the global batch; under torchrun, split over the processes).
        tau: distillation temperature. gt_weight: weight of the ground-truth CE (``use_labels``).
        video_weight: weight of the distillation of the recurrent video logits.
        use_labels: mix in the data set's labels (only when they are the classifier's classes).
        adversarial_eps: l_inf budget on the [0, 1] pixel grid of adversarial training (0: off);
            each batch is replaced by its :func:`frame_pgd` examples of ``adversarial_steps`` steps.
        classifier_ref: the classifier's name or path, recorded in ``"serves"``.
        resume: continue from ``OUT-last.*`` (same settings) when it exists.

    Returns:
        ``{"best_path", "history", "epochs_run", "serves"}``.
    """
    if not getattr(student, "has_frame_logits", False):
        raise ValueError(
            f"{student.arch_name or type(student).__name__} has no per-frame path; pick an lrcn* architecture"
        )
    k = getattr(classifier, "num_classes", None)
    if student.num_classes != k:
        raise ValueError(f"the detection network has {student.num_classes} classes but the classifier {k}")
    if epochs < 1 or batch_size < 1 or lr <= 0 or tau <= 0:
        raise ValueError("need epochs, batch_size >= 1 and lr, tau > 0")
    if not 0 <= adversarial_eps <= 1 or adversarial_steps < 1:
        raise ValueError("need 0 <= adversarial_eps <= 1 and adversarial_steps >= 1")
    world = ddp.world()
    if batch_size < world.size:
        raise ValueError(f"the global batch ({batch_size}) is smaller than the number of processes ({world.size})")
    device = torch.device(device)
    student.to(device)
    classifier.to(device).eval()
    serves = {
        "ref": classifier_ref,
        "sha256": classifier_hash(classifier),
        "num_classes": int(k),
        "class_names": list(classifier.class_names) if getattr(classifier, "class_names", None) else None,
        "input_spec": classifier.input_spec.to_dict(),
    }
    student.class_names = serves["class_names"]
    settings = {
        "epochs": epochs, "batch_size": batch_size, "lr": lr, "weight_decay": weight_decay, "tau": tau,
        "gt_weight": gt_weight if use_labels else 0.0, "video_weight": video_weight, "seed": seed,
        "train_videos": len(train_set), "adversarial_eps": adversarial_eps,
        "adversarial_steps": adversarial_steps if adversarial_eps > 0 else 0,
    }  # fmt: skip
    steps = -(-len(train_set) // batch_size)
    optimizer = torch.optim.AdamW(student.parameters(), lr=lr, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * steps)
    best_path, _ = checkpoint_paths(out)
    last = last_state_path(out)
    history: list[dict] = []
    start = 0
    if resume and last.is_file():
        meta = load_training_state(
            last,
            model=student,
            optimizer=optimizer,
            scheduler=scheduler,
            check=_check_resumable(last, student, settings=settings, serves=serves),
        )
        start, history = meta["epoch"], list(meta["history"])
    loss_fn = functools.partial(_student_loss, tau=tau, gt_weight=gt_weight, video_weight=video_weight)
    trainer = ddp.wrap(ddp.LossModule(student, loss_fn), device)
    progress = progress and world.is_main
    with progress_bar("loss {task.fields[loss]}", disable=not progress) as bar:
        for epoch in range(start, epochs):
            started = time.perf_counter()
            torch.manual_seed(seed + epoch)
            loader = make_loader(train_set, batch_size=batch_size, shuffle=True, seed=seed + epoch)
            weights = None
            if world.distributed:  # this process's share of each global batch
                loader, weights = ddp.shard_loader(loader, world)
            task = bar.add_task(f"epoch {epoch + 1}/{epochs}", total=len(loader), loss="-")
            trainer.train()
            total = agree = frames = seen = 0.0
            for step, (videos, labels) in enumerate(loader):
                videos = videos.to(device)
                labels = torch.as_tensor(labels).long().to(device)
                with torch.no_grad():
                    teacher = classifier(resample_video(videos, classifier.input_spec)).float()
                if adversarial_eps > 0:
                    videos = frame_pgd(
                        student, videos, teacher.argmax(-1), eps=adversarial_eps, steps=adversarial_steps
                    )
                loss, f = trainer(videos, teacher, labels if use_labels else None)
                optimizer.zero_grad(set_to_none=True)
                n, scale = (videos.shape[0], None) if weights is None else weights[step]
                (loss if scale is None else loss * scale).backward()
                torch.nn.utils.clip_grad_norm_(trainer.parameters(), 5.0)
                optimizer.step()
                scheduler.step()
                total += float(loss.detach()) * n
                agree += float((f.detach()[:n].argmax(-1) == teacher[:n].argmax(-1)[:, None]).sum())
                frames += n * f.shape[1]
                seen += n
                bar.update(task, advance=1, loss=f"{total / max(seen, 1):.4f}")
            total, agree, frames, seen = ddp.all_sum([total, agree, frames, seen])
            bar.remove_task(task)
            metrics = {
                "epoch": epoch + 1,
                "train_loss": total / seen,
                "train_frame_agreement": agree / frames,
                "seconds": round(time.perf_counter() - started, 2),
            }
            history.append(metrics)
            if world.is_main:
                save_model(
                    student,
                    best_path,
                    metadata={**(extra_metadata or {}), "serves": serves, "training": settings, "history": history,
                              "metrics": metrics, "kind": "distilled-detector"},
                )  # fmt: skip
                save_training_state(
                    last,
                    model=student,
                    optimizer=optimizer,
                    scheduler=scheduler,
                    metadata={
                        "kind": "distilled-detector",
                        "model": model_metadata(student),
                        "epoch": epoch + 1,
                        "history": history,
                        "settings": settings,
                        "serves": serves,
                    },
                )
            if progress:
                bar.console.print(
                    f"epoch {epoch + 1}/{epochs}: loss {metrics['train_loss']:.4f}, "
                    f"frame agreement {metrics['train_frame_agreement']:.4f}, {metrics['seconds']} s"
                )
    ddp.finish()
    return {"best_path": best_path, "history": history, "epochs_run": epochs - start, "serves": serves}


def _check_resumable(path, model, *, settings: dict, serves: dict):
    """A ``check`` for :func:`~vidshield.checkpoint.load_training_state`: a train-detector state
    for the same architecture, classes, classifier and settings."""

    def check(meta: dict) -> None:
        what = dict(what=f"train-detector state {printable(path)}", error=CheckpointError)
        if meta.get("kind") != "distilled-detector":
            raise CheckpointError(f"{printable(path)} is a training state, but not of `vidshield train-detector`")
        saved, current = field(meta, "model", dict, **what), model_metadata(model)
        for key in ("architecture", "arch_config", "num_classes"):
            if saved.get(key) != current[key]:
                raise CheckpointError(
                    f"cannot resume from {printable(path)}: it was made for {key} = "
                    f"{printable(repr(saved.get(key)))[:80]}, this run has {current[key]!r}"
                )
        if field(field(meta, "serves", dict, **what), "sha256", str, max_len=64, **what) != serves["sha256"]:
            raise CheckpointError(f"cannot resume from {printable(path)}: it was trained for another classifier")
        saved_settings = field(meta, "settings", dict, **what)
        if saved_settings != settings:
            diff = sorted(k for k in settings if saved_settings.get(k) != settings[k])
            raise CheckpointError(f"cannot resume from {printable(path)}: settings differ ({', '.join(diff)})")
        field(meta, "epoch", int, lo=0, hi=settings["epochs"], **what)
        field(meta, "history", list, max_len=settings["epochs"], items=dict, **what)

    return check

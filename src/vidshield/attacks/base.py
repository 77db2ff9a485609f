"""The :class:`Attack` interface shared by every attack, and the helpers they share.

An attack takes a victim :class:`~vidshield.models.base.VideoClassifier` and maps
``(video, labels)`` to adversarial videos of the same shape, in [0, 1]. It never modifies its
input, runs on the model's device, puts the model in eval mode for the duration (and restores
the previous modes), and takes its randomness from a ``torch.Generator``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from vidshield.attacks.metrics import AttackReport, perturbation_metrics
from vidshield.utils import module_device as model_device
from vidshield.video import as_batch, check_batch, check_labels

__all__ = [
    "Attack",
    "attack_mode",
    "probability_loss",
    "is_success",
    "predict",
    "model_device",
    "resolve_target",
]


@contextlib.contextmanager
def _recurrent_layers_in_train_mode(model: nn.Module) -> Iterator[None]:
    """Put only the ``nn.RNNBase`` submodules in train mode with dropout 0 (same maths as eval),
    so that cuDNN accepts a backward pass through them; restore both afterwards."""
    saved = []
    for m in model.modules():
        if isinstance(m, nn.RNNBase):
            saved.append((m, m.training, m.dropout))
            m.dropout = 0.0
            m.train(True)
    try:
        yield
    finally:
        for m, training, dropout in saved:
            m.dropout = dropout
            m.train(training)


@contextlib.contextmanager
def attack_mode(model: nn.Module) -> Iterator[None]:
    """Freeze ``model`` for an attack and restore it afterwards.

    Inside the block the model is in eval mode (dropout off, batch-norm running statistics),
    its parameters do not require gradients (only the attack's variables get them), and on CUDA
    its recurrent layers can be differentiated: through ``model.rnn_backward_mode()`` where the
    model provides it, else by putting only its ``nn.RNNBase`` layers in train mode with their
    dropout set to 0. The train/eval mode of every submodule and each parameter's
    ``requires_grad`` are restored on exit.
    """
    modes = [(m, m.training) for m in model.modules()]
    grads = [(p, p.requires_grad) for p in model.parameters()]
    model.eval()
    for p, _ in grads:
        p.requires_grad_(False)
    try:
        if model_device(model).type == "cuda":
            rnn_ctx = (
                model.rnn_backward_mode()
                if hasattr(model, "rnn_backward_mode")
                else _recurrent_layers_in_train_mode(model)
            )
        else:
            rnn_ctx = contextlib.nullcontext()
        with rnn_ctx:
            yield
    finally:
        for m, training in modes:
            m.training = training
        for p, req in grads:
            p.requires_grad_(req)


def probability_loss(
    logits: torch.Tensor, labels: torch.Tensor, target: torch.Tensor | None = None, *, eps: float = 1e-6
) -> torch.Tensor:
    """The probability losses of Wei et al. 2019 and Li et al. 2019, per video.

    Untargeted: ``-log(1 - p_label + eps)`` (push the true class down).
    Targeted: ``-log(p_target + eps)`` (pull the target class up).

    Args:
        logits: ``(N, K)``.
        labels: ``int64 (N,)`` true labels (used when ``target`` is None).
        target: ``int64 (N,)`` target classes, or None for the untargeted loss.
        eps: the small constant inside the log (the reference code uses 1e-6).

    Returns:
        ``(N,)`` losses, to be minimised.
    """
    probs = logits.softmax(dim=1)
    if target is None:
        p = probs.gather(1, labels.view(-1, 1)).squeeze(1)
        return -torch.log(1.0 - p + eps)
    p = probs.gather(1, target.view(-1, 1)).squeeze(1)
    return -torch.log(p + eps)


def is_success(pred: torch.Tensor, labels: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
    """``bool (N,)``: untargeted ``pred != labels``; targeted ``pred == target``."""
    return pred != labels if target is None else pred == target


@torch.no_grad()
def predict(model: nn.Module, video: torch.Tensor) -> torch.Tensor:
    """Top-1 predictions ``int64 (N,)`` of ``model`` on ``video (N, T, 3, H, W)``, in eval mode
    (previous modes restored), on the model's device."""
    with attack_mode(model):
        return model(video.to(model_device(model))).argmax(dim=1)


def resolve_target(target: int | torch.Tensor | None, n: int, device: torch.device) -> torch.Tensor | None:
    """``None`` stays ``None``; an int becomes ``int64 (n,)``; a tensor is checked to be ``(n,)``."""
    if target is None:
        return None
    if isinstance(target, int):
        return torch.full((n,), target, dtype=torch.int64, device=device)
    check_labels(target, n, name="target")
    return target.to(device=device, dtype=torch.int64)


class Attack:
    """Base class: ``attack(video, labels, *, target=None, generator=None) -> adversarial video``.

    Subclasses implement :meth:`perturb` on a batch already on the model's device and describe
    their parameters in :meth:`config` (written into adversarial-set manifests).

    Args:
        model: the victim classifier: ``(N, T, 3, H, W)`` in [0, 1] -> logits ``(N, K)``.
        targeted: if True, ``target`` classes must be given and success means reaching them.
    """

    name: str = "attack"

    def __init__(self, model: nn.Module, *, targeted: bool = False):
        if not isinstance(model, nn.Module):
            raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        self.model = model
        self.targeted = bool(targeted)

    @property
    def device(self) -> torch.device:
        return model_device(self.model)

    def config(self) -> dict:
        """The attack's parameters as a JSON-ready dict."""
        return {"name": self.name, "targeted": self.targeted}

    def perturb(
        self, video: torch.Tensor, labels: torch.Tensor, target: torch.Tensor | None, generator: torch.Generator | None
    ) -> torch.Tensor:
        """Return adversarial videos for a checked batch on the model's device (model frozen)."""
        raise NotImplementedError

    def _prepare(self, video, labels, target):
        batch, single = as_batch(video)
        check_batch(batch)
        check_labels(labels, batch.shape[0])
        if self.targeted and target is None:
            raise ValueError(f"{type(self).__name__} is targeted: pass target= (an int or int64 (N,) classes)")
        if not self.targeted and target is not None:
            raise ValueError(f"{type(self).__name__} is untargeted: construct it with targeted=True to pass a target")
        device = self.device
        x = batch.detach().to(device=device, dtype=torch.float32)
        y = labels.detach().to(device=device, dtype=torch.int64)
        return x, y, resolve_target(target, x.shape[0], device), single

    def __call__(
        self,
        video: torch.Tensor,
        labels: torch.Tensor,
        *,
        target: int | torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Attack a batch ``float (N, T, 3, H, W)`` (or one video ``(T, 3, H, W)``) in [0, 1].

        Args:
            video: clean videos in [0, 1]; not modified.
            labels: ``int64 (N,)`` true labels.
            target: target classes (targeted attacks only): an int or ``int64 (N,)``.
            generator: the source of the attack's randomness (random starts, shifts).

        Returns:
            Adversarial videos, same shape as ``video``, in [0, 1], on ``video``'s device.
        """
        x, y, t, single = self._prepare(video, labels, target)
        with attack_mode(self.model), torch.enable_grad():
            adv = self.perturb(x, y, t, generator)
        adv = adv.detach().clamp(0.0, 1.0).to(video.device)
        return adv[0] if single else adv

    def attack_with_report(
        self,
        video: torch.Tensor,
        labels: torch.Tensor,
        *,
        target: int | torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, list[AttackReport]]:
        """Like ``__call__``, and also return one :class:`AttackReport` per video."""
        adv = self(video, labels, target=target, generator=generator)
        clean, _ = as_batch(video)
        adv_b, _ = as_batch(adv)
        y = labels.to(torch.int64).cpu()
        t = resolve_target(target, clean.shape[0], torch.device("cpu"))
        before = predict(self.model, clean).cpu()
        after = predict(self.model, adv_b).cpu()
        success = is_success(after, y, t)
        reports = [
            AttackReport(
                success=bool(success[i]),
                label=int(y[i]),
                pred_before=int(before[i]),
                pred_after=int(after[i]),
                target=None if t is None else int(t[i]),
                **m,
            )
            for i, m in enumerate(perturbation_metrics(clean.to(adv_b.device), adv_b))
        ]
        return adv, reports

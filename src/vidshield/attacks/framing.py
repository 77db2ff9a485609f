"""Adversarial framing (Zajac et al., "Adversarial Framing for Image and Video Classification",
2018): a learned universal border of width ``w`` around every frame; the content inside the
border is untouched (bit-identical).

Here the border *replaces* the outer ``w`` pixels of each frame, so clip size is kept. The
framing is ``(F, 3, H, W)`` (only its border is used): ``F = 1`` puts the same border on every
frame, ``F > 1`` gives each frame its own border, applied periodically in time. It is trained
universally (one framing for the whole data set) with Adam on a ``tanh`` parameterisation
``framing = (tanh(theta) + 1) / 2`` that keeps it in [0, 1]; loss ``-log(1 - p_true)``
(untargeted) or ``-log(p_target)`` (targeted).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from vidshield.attacks.base import Attack, attack_mode, model_device, probability_loss
from vidshield.attacks.registry import register_attack
from vidshield.checkpoint import load_checkpoint, save_checkpoint
from vidshield.errors import CheckpointError
from vidshield.jsonio import field
from vidshield.models.checkpoints import resolve_artifact
from vidshield.text import printable

__all__ = ["border_mask", "apply_framing", "train_framing", "AdversarialFraming", "save_framing", "load_framing"]


def border_mask(height: int, width: int, border: int, *, device=None) -> torch.Tensor:
    """``bool (H, W)``: True on the outer ``border`` pixels of a frame."""
    if border < 1 or 2 * border >= min(height, width):
        raise ValueError(
            f"border width must be in [1, {(min(height, width) - 1) // 2}] for {height}x{width} frames, got {border}"
        )
    mask = torch.ones(height, width, dtype=torch.bool, device=device)
    mask[border:-border, border:-border] = False
    return mask


def apply_framing(video: torch.Tensor, framing: torch.Tensor, border: int) -> torch.Tensor:
    """Replace the outer ``border`` pixels of every frame with the framing.

    Args:
        video: ``float (N, T, 3, H, W)`` in [0, 1].
        framing: ``float (F, 3, H, W)`` in [0, 1]; frame ``t`` uses ``framing[t mod F]``.
        border: the framing width ``w`` in pixels.

    Returns:
        ``float (N, T, 3, H, W)``: the interior ``[w:-w, w:-w]`` is bit-identical to ``video``.
    """
    if framing.dim() != 4 or framing.shape[1] != 3 or framing.shape[-2:] != video.shape[-2:]:
        raise ValueError(f"framing must be (F, 3, {video.shape[-2]}, {video.shape[-1]}), got {tuple(framing.shape)}")
    t = video.shape[1]
    mask = border_mask(video.shape[-2], video.shape[-1], border, device=video.device)
    index = torch.arange(t, device=video.device) % framing.shape[0]
    frames = framing.to(video.device, video.dtype)[index].unsqueeze(0)  # (1, T, 3, H, W)
    return torch.where(mask, frames, video)


def train_framing(
    model: nn.Module,
    videos: torch.Tensor,
    labels: torch.Tensor,
    *,
    border: int,
    frames: int = 1,
    target_class: int | None = None,
    steps: int = 500,
    batch_size: int = 16,
    lr: float = 0.1,
    seed: int = 0,
    progress: Callable[[int, float], None] | None = None,
) -> torch.Tensor:
    """Learn a universal adversarial framing for a frozen classifier.

    Args:
        model: the victim classifier.
        videos: training clips ``float (M, T, 3, H, W)`` in [0, 1]; labels: ``int64 (M,)``.
        border: framing width in pixels.
        frames: number of distinct framings (1: the same border on every frame).
        target_class: pull every clip to this class; None: push each away from its label.
        steps, batch_size, lr: Adam optimisation of the tanh parameters.
        seed: seeds the initial framing and the batches.
        progress: called as ``progress(step, loss)`` after every step.

    Returns:
        The framing ``float (frames, 3, H, W)`` in [0, 1] (only its border matters).
    """
    if videos.dim() != 5 or videos.shape[2] != 3 or labels.shape != (videos.shape[0],):
        raise ValueError(
            f"videos must be (M, T, 3, H, W) with labels (M,), got {tuple(videos.shape)}, {tuple(labels.shape)}"
        )
    if steps < 1 or batch_size < 1 or frames < 1:
        raise ValueError("need steps, batch_size and frames >= 1")
    border_mask(videos.shape[-2], videos.shape[-1], border)
    device = model_device(model)
    rng = torch.Generator().manual_seed(seed)
    theta = (torch.randn(frames, 3, *videos.shape[-2:], generator=rng) * 0.1).to(device).requires_grad_(True)
    opt = torch.optim.Adam([theta], lr=lr)
    labels = labels.to(torch.int64)
    with attack_mode(model):
        for step in range(steps):
            idx = torch.randperm(videos.shape[0], generator=rng)[:batch_size]
            x = videos[idx].to(device, torch.float32)
            y = labels[idx].to(device)
            target = None if target_class is None else torch.full_like(y, target_class)
            adv = apply_framing(x, (torch.tanh(theta) + 1) / 2, border)
            loss = probability_loss(model(adv), y, target).mean()
            (theta.grad,) = torch.autograd.grad(loss, theta)
            opt.step()
            if progress is not None:
                progress(step, float(loss.detach()))
    return ((torch.tanh(theta) + 1) / 2).detach()


class AdversarialFraming(Attack):
    """Applies a learned universal adversarial framing (Zajac et al. 2018); budget: the border.

    Args:
        model: the classifier used for reports.
        framing: ``float (F, 3, H, W)`` in [0, 1] from :func:`train_framing`.
        width: the border width ``w`` in pixels.

    Example:
        >>> framing = train_framing(model, videos, labels, border=2, steps=200)
        >>> adv = AdversarialFraming(model, framing, width=2)(videos, labels)
    """

    name = "framing"

    def __init__(self, model: nn.Module, framing: torch.Tensor, *, width: int):
        super().__init__(model, targeted=False)
        if not isinstance(framing, torch.Tensor) or framing.dim() != 4 or framing.shape[1] != 3:
            raise ValueError("framing must be a (F, 3, H, W) tensor in [0, 1]")
        border_mask(framing.shape[-2], framing.shape[-1], width)
        self.framing = framing.detach()
        self.width = int(width)

    def config(self) -> dict:
        return {**super().config(), "width": self.width, "frames": self.framing.shape[0]}

    def perturb(self, video, labels, target, generator):
        return apply_framing(video, self.framing, self.width)


def save_framing(path: str | Path, framing: torch.Tensor, *, width: int, metadata: dict | None = None) -> Path:
    """Save a framing as safetensors + JSON; returns the ``.safetensors`` path."""
    return save_checkpoint(
        path, {"framing": framing.detach()}, {"kind": "adversarial-framing", "width": int(width), **(metadata or {})}
    )


def load_framing(path: str | Path, *, device: str | torch.device = "cpu") -> tuple[torch.Tensor, int, dict]:
    """Load ``(framing (F, 3, H, W), width, metadata)`` saved by :func:`save_framing` (``path``: a
    checkpoint path or a name shipped in the zoo)."""
    path = resolve_artifact(path, kind="adversarial framing")
    state, meta = load_checkpoint(path, device=device)
    if meta.get("kind") != "adversarial-framing" or "framing" not in state:
        raise CheckpointError(f"{path} is not an adversarial framing checkpoint (kind={meta.get('kind')!r})")
    width = field(
        meta, "width", int, lo=1, hi=1 << 14, what=f"framing metadata {printable(path)}", error=CheckpointError
    )
    return state["framing"], width, meta


@register_attack("framing")
def framing_attack(
    model: nn.Module, *, checkpoint: str | Path | None = None, framing: torch.Tensor | None = None, width: int = 8
) -> AdversarialFraming:
    """The registry's ``framing`` attack: a trained framing given as a tensor and ``width``, or
    loaded from a checkpoint of :func:`save_framing` (which records its width)."""
    if (checkpoint is None) == (framing is None):
        raise ValueError("give exactly one of checkpoint, framing")
    if checkpoint is not None:
        framing, width, _ = load_framing(checkpoint)
    return AdversarialFraming(model, framing, width=width)

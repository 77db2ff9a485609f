"""Projected gradient descent (Madry et al. 2018), l_inf, on all frames or on a frame subset.

Untargeted: ascend the cross-entropy of the true label; targeted: descend the cross-entropy of
the target. Each step moves by ``alpha * sign(grad)`` on the selected frames, then projects onto
the ``eps`` ball around the clean video and onto [0, 1]. Frames outside the mask stay
bit-identical.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vidshield.attacks.base import Attack
from vidshield.attacks.registry import register_attack
from vidshield.attacks.sparse import frame_mask, spread_frames

__all__ = ["pgd_attack", "PGD"]


def pgd_attack(
    model: nn.Module,
    video: torch.Tensor,
    labels: torch.Tensor,
    *,
    eps: float = 8 / 255,
    alpha: float | None = None,
    steps: int = 10,
    random_start: bool = True,
    mask: torch.Tensor | None = None,
    target: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """l_inf PGD on a frozen model.

    Args:
        model: frozen classifier ``(N, T, 3, H, W) -> (N, K)``.
        video: ``float (N, T, 3, H, W)`` in [0, 1]; not modified.
        labels: ``int64 (N,)``.
        eps: the l_inf budget on the [0, 1] scale.
        alpha: step size (default ``eps / 4``).
        steps: number of steps.
        random_start: start from a uniform point of the eps ball (drawn with ``generator``).
        mask: ``bool (N, T)`` frames that may change (None: all).
        target: ``int64 (N,)`` target classes, or None (untargeted).
        generator: randomness of the random start.

    Returns:
        ``float (N, T, 3, H, W)`` in [0, 1] with ``|adv - video| <= eps``.
    """
    if eps <= 0 or steps < 0:
        raise ValueError(f"need eps > 0 and steps >= 0, got eps={eps}, steps={steps}")
    alpha = eps / 4 if alpha is None else alpha
    x = video.detach()
    n, t = x.shape[:2]
    m = torch.ones(n, t, dtype=torch.bool, device=x.device) if mask is None else mask.to(x.device)
    mf = m.view(n, t, 1, 1, 1).to(x.dtype)
    delta = torch.zeros_like(x)
    if random_start:
        noise = torch.rand(x.shape, generator=generator, dtype=x.dtype).to(x.device)
        delta = (noise * 2 - 1) * eps * mf
    adv = (x + delta).clamp(0.0, 1.0)
    for _ in range(steps):
        adv.requires_grad_(True)
        logits = model(adv)
        if target is None:
            loss = F.cross_entropy(logits, labels, reduction="sum")
        else:
            loss = -F.cross_entropy(logits, target, reduction="sum")
        (grad,) = torch.autograd.grad(loss, adv)
        with torch.no_grad():
            step = adv + alpha * grad.sign() * mf
            adv = torch.minimum(torch.maximum(step, x - eps), x + eps).clamp(0.0, 1.0)
    return torch.where(m.view(n, t, 1, 1, 1), adv.detach(), x)


@register_attack("pgd")
class PGD(Attack):
    """l_inf PGD (Madry et al. 2018) on all frames, given frames, or ``num_frames`` spread frames.

    Args:
        model: the victim.
        eps: l_inf budget ([0, 1] scale), default 8/255.
        alpha: step size (default eps / 4).
        steps: iterations (default 10).
        random_start: uniform random start in the eps ball.
        frames: frame indices to perturb (None: every frame unless ``num_frames`` is set).
        num_frames: perturb this many frames spread over the clip (see
            :func:`~vidshield.attacks.sparse.spread_frames`).
        targeted: descend the cross-entropy of ``target`` instead.

    Example:
        >>> adv = PGD(model, eps=4 / 255, steps=20)(video, labels, generator=torch.Generator().manual_seed(0))
    """

    name = "pgd"

    def __init__(
        self,
        model: nn.Module,
        *,
        eps: float = 8 / 255,
        alpha: float | None = None,
        steps: int = 10,
        random_start: bool = True,
        frames=None,
        num_frames: int | None = None,
        targeted: bool = False,
    ):
        super().__init__(model, targeted=targeted)
        if eps <= 0 or steps < 0 or (alpha is not None and alpha <= 0):
            raise ValueError("need eps > 0, steps >= 0 and alpha > 0")
        if frames is not None and num_frames is not None:
            raise ValueError("pass frames= or num_frames=, not both")
        if num_frames is not None and num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got {num_frames}")
        self.eps, self.alpha, self.steps, self.random_start = eps, alpha, steps, random_start
        self.frames = None if frames is None else tuple(int(f) for f in frames)
        self.num_frames = num_frames

    def config(self) -> dict:
        return {
            **super().config(),
            "eps": self.eps,
            "alpha": self.eps / 4 if self.alpha is None else self.alpha,
            "steps": self.steps,
            "random_start": self.random_start,
            "frames": None if self.frames is None else list(self.frames),
            "num_frames": self.num_frames,
        }

    def perturb(self, video, labels, target, generator):
        n, t = video.shape[:2]
        mask = None
        if self.frames is not None:
            mask = frame_mask(t, self.frames).expand(n, t)
        elif self.num_frames is not None:
            mask = frame_mask(t, spread_frames(t, min(self.num_frames, t))).expand(n, t)
        return pgd_attack(
            self.model,
            video,
            labels,
            eps=self.eps,
            alpha=self.alpha,
            steps=self.steps,
            random_start=self.random_start,
            mask=mask,
            target=target,
            generator=generator,
        )

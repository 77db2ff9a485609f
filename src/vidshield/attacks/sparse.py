"""The sparse l2,1 video attack of Wei, Zhu, Su, "Sparse Adversarial Perturbations for Videos"
(AAAI 2019), against a CNN+LSTM.

A temporal mask selects the frames that may change; the perturbation ``E = mask * delta`` is
optimised with Adam on

    loss = -log(1 - p_true + 1e-6)              (untargeted; targeted: -log(p_target + 1e-6))
           + lam * sum_t RMS_t(adv - clean)      (the l2,1 term)

where ``RMS_t`` is the root-mean-square of frame t's (clamped) perturbation on the [0, 1] scale.
The authors' code uses this per-frame RMS (the per-frame l2 norm divided by sqrt(C*H*W)) rather
than the plain l2 norm; we follow it. Reports measure the true l2,1 norm (see
:mod:`vidshield.attacks.metrics`).

Defaults follow the reference code: 40-frame clips with frames 0, 11-13, 19-22, 32-33 perturbed
(:data:`REFERENCE_MASK_40`), lam = 1, Adam lr 1e-3 on the [0, 1] scale (0.255 on 0-255), 100
iterations, the perturbation initialised to 0.01 on the 0-255 scale, and videos the model already
gets wrong left untouched (the reference skips them).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from vidshield.attacks.base import Attack, is_success, probability_loss
from vidshield.attacks.registry import register_attack

__all__ = [
    "REFERENCE_MASK_40",
    "spread_frames",
    "frame_mask",
    "salient_frame_mask",
    "sparse_attack",
    "SparseAttack",
]

#: The frames the reference code perturbs in a 40-frame clip (10 of them).
REFERENCE_MASK_40: tuple[int, ...] = (0, 11, 12, 13, 19, 20, 21, 22, 32, 33)

MASK_MODES = ("given", "spread", "salient")


def spread_frames(num_total: int, k: int) -> tuple[int, ...]:
    """``k`` frame indices spread evenly over a ``num_total``-frame clip, starting at frame 0.

    For the reference setting (40 frames, 10 perturbed) this returns :data:`REFERENCE_MASK_40`.
    Otherwise frame ``floor(i * num_total / k)`` for ``i = 0 .. k-1``.
    """
    if num_total < 1 or not 1 <= k <= num_total:
        raise ValueError(f"need 1 <= k <= num_total to spread frames, got k={k}, num_total={num_total}")
    if num_total == 40 and k == len(REFERENCE_MASK_40):
        return REFERENCE_MASK_40
    return tuple((i * num_total) // k for i in range(k))


def frame_mask(num_total: int, frames) -> torch.Tensor:
    """A ``bool (T,)`` mask with ``True`` at the given frame indices (negative indices count from
    the end); raises ``ValueError`` for an index outside the clip or an empty list."""
    frames = [int(f) for f in frames]
    if not frames:
        raise ValueError("the frame list of a sparse attack must not be empty")
    mask = torch.zeros(num_total, dtype=torch.bool)
    for f in frames:
        if not -num_total <= f < num_total:
            raise ValueError(f"frame index {f} is outside a {num_total}-frame clip")
        mask[f] = True
    return mask


def salient_frame_mask(
    model: nn.Module, video: torch.Tensor, labels: torch.Tensor, k: int, *, target: torch.Tensor | None = None
) -> torch.Tensor:
    """The ``k`` frames of each video whose input gradient of the attack loss is largest (l2 norm).

    Args:
        model: a frozen classifier (see :func:`~vidshield.attacks.base.attack_mode`).
        video: ``float (N, T, 3, H, W)`` in [0, 1].
        labels: ``int64 (N,)``; target: ``int64 (N,)`` or None.
        k: frames to select per video, ``1 <= k <= T``.

    Returns:
        ``bool (N, T)`` with exactly ``k`` True per row.
    """
    n, t = video.shape[:2]
    if not 1 <= k <= t:
        raise ValueError(f"need 1 <= k <= T={t} salient frames, got {k}")
    with torch.enable_grad():
        x = video.detach().clone().requires_grad_(True)
        loss = probability_loss(model(x), labels, target).sum()
        (grad,) = torch.autograd.grad(loss, x)
    scores = grad.flatten(2).norm(dim=2)  # (N, T)
    top = scores.topk(k, dim=1).indices
    return torch.zeros(n, t, dtype=torch.bool, device=video.device).scatter_(1, top, True)


def sparse_attack(
    model: nn.Module,
    video: torch.Tensor,
    labels: torch.Tensor,
    mask: torch.Tensor,
    *,
    target: torch.Tensor | None = None,
    lam: float = 1.0,
    lr: float = 1e-3,
    steps: int = 100,
    tol: float = 1e-5,
    patience: int = 10,
    eps: float | None = None,
    init: float = 0.01 / 255,
) -> torch.Tensor:
    """Optimise a masked l2,1-regularised perturbation per video (Wei et al. 2019).

    The model must already be frozen (eval mode, no parameter gradients). Each video is optimised
    independently (a batch gives the same result as its videos one by one). A video stops
    improving when its loss has not dropped by more than ``tol`` for ``patience`` iterations;
    the loop ends when every video has stopped or after ``steps`` Adam steps. Per video the
    result is the successful iterate with the smallest l2,1 norm, else the lowest-loss iterate.
    Videos on which the clean video already succeeds (untargeted: misclassified) are returned
    unchanged.

    Args:
        model: frozen classifier ``(N, T, 3, H, W) -> (N, K)``.
        video: ``float (N, T, 3, H, W)`` in [0, 1]; not modified.
        labels: ``int64 (N,)`` true labels.
        mask: ``bool (N, T)``, the frames that may change.
        target: ``int64 (N,)`` target classes, or None (untargeted).
        lam: weight of the l2,1 (per-frame RMS) term.
        lr: Adam learning rate, on the [0, 1] scale.
        steps: maximum number of Adam steps.
        tol, patience: early stop (see above).
        eps: optional l_inf cap on the perturbation ([0, 1] scale).
        init: initial value of every masked perturbation element ([0, 1] scale).

    Returns:
        ``float (N, T, 3, H, W)`` in [0, 1]; frames outside ``mask`` are bit-identical to ``video``.
    """
    n, t = video.shape[:2]
    if mask.shape != (n, t) or mask.dtype != torch.bool:
        raise ValueError(f"mask must be bool ({n}, {t}), got {mask.dtype} {tuple(mask.shape)}")
    if steps < 0 or patience < 1 or lam < 0 or lr <= 0:
        raise ValueError("need steps >= 0, patience >= 1, lam >= 0 and lr > 0")
    if eps is not None and eps <= 0:
        raise ValueError(f"eps must be positive, got {eps}")
    x = video.detach()
    m = mask.to(x.device).view(n, t, 1, 1, 1)
    mf = m.to(x.dtype)
    start = init if eps is None else min(init, eps)
    delta = torch.full_like(x, start).mul_(mf).requires_grad_(True)
    opt = torch.optim.Adam([delta], lr=lr)

    best = x.clone()
    best_loss = torch.full((n,), math.inf, device=x.device)
    best_norm = torch.full((n,), math.inf, device=x.device)
    found = torch.zeros(n, dtype=torch.bool, device=x.device)
    stall = torch.zeros(n, dtype=torch.long, device=x.device)
    with torch.no_grad():
        active = ~is_success(model(x).argmax(1), labels, target)

    for step in range(steps + 1):
        adv = (x + delta * mf).clamp(0.0, 1.0)
        logits = model(adv)
        rms = ((adv - x).pow(2).mean(dim=(2, 3, 4)) + 1e-12).sqrt() * mf.view(n, t)
        norm = rms.sum(dim=1)
        loss = probability_loss(logits, labels, target) + lam * norm
        with torch.no_grad():
            succ = is_success(logits.argmax(1), labels, target) & active
            better_adv = succ & (norm < best_norm)
            fallback = active & ~found & ~succ & (loss < best_loss)
            take = better_adv | fallback
            best[take] = adv.detach()[take]
            best_norm = torch.where(better_adv, norm, best_norm)
            found |= succ
            improved = loss < best_loss - tol
            stall = torch.where(improved, torch.zeros_like(stall), stall + 1)
            best_loss = torch.where(active & (loss < best_loss), loss, best_loss)
            active &= stall < patience
        if step == steps or not bool(active.any()):
            break
        (grad,) = torch.autograd.grad(loss.sum(), delta)
        delta.grad = grad
        opt.step()
        if eps is not None:
            with torch.no_grad():
                delta.clamp_(-eps, eps)
    return torch.where(m, best, x)


@register_attack("sparse")
class SparseAttack(Attack):
    """Sparse l2,1 attack of Wei, Zhu, Su (AAAI 2019); norm: l2,1 over frames (+ optional l_inf cap).

    Args:
        model: the victim (the paper: the CNN+LSTM).
        frames: explicit frame indices to perturb (``mask_mode="given"``).
        num_frames: how many frames to perturb for the "spread" and "salient" modes (default 10).
        mask_mode: "given" (``frames``), "spread" (``num_frames`` spread over the clip;
            :data:`REFERENCE_MASK_40` for 40-frame clips), or "salient" (the ``num_frames``
            frames with the largest input-gradient norm, per video). Default: "given" when
            ``frames`` is set, else "spread".
        lam, lr, steps, tol, patience, eps: see :func:`sparse_attack`.
        targeted: success means reaching the ``target`` class (loss ``-log p_target``).

    Example:
        >>> attack = SparseAttack(model, num_frames=4, steps=50)
        >>> adv, reports = attack.attack_with_report(video, labels)
    """

    name = "sparse"

    def __init__(
        self,
        model: nn.Module,
        *,
        frames=None,
        num_frames: int = 10,
        mask_mode: str | None = None,
        lam: float = 1.0,
        lr: float = 1e-3,
        steps: int = 100,
        tol: float = 1e-5,
        patience: int = 10,
        eps: float | None = None,
        targeted: bool = False,
    ):
        super().__init__(model, targeted=targeted)
        mask_mode = mask_mode or ("given" if frames is not None else "spread")
        if mask_mode not in MASK_MODES:
            raise ValueError(f"mask_mode must be one of {MASK_MODES}, got {mask_mode!r}")
        if mask_mode == "given" and frames is None:
            raise ValueError('mask_mode="given" needs frames= (a list of frame indices)')
        if mask_mode != "given" and frames is not None:
            raise ValueError(f'frames= is only used with mask_mode="given", not {mask_mode!r}')
        if num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got {num_frames}")
        if steps < 0 or patience < 1 or lam < 0 or lr <= 0 or (eps is not None and eps <= 0):
            raise ValueError("need steps >= 0, patience >= 1, lam >= 0, lr > 0 and eps > 0 (or None)")
        self.frames = None if frames is None else tuple(int(f) for f in frames)
        self.num_frames = int(num_frames)
        self.mask_mode = mask_mode
        self.lam, self.lr, self.steps, self.tol, self.patience, self.eps = lam, lr, steps, tol, patience, eps

    def config(self) -> dict:
        return {
            **super().config(),
            "mask_mode": self.mask_mode,
            "frames": None if self.frames is None else list(self.frames),
            "num_frames": self.num_frames,
            "lam": self.lam,
            "lr": self.lr,
            "steps": self.steps,
            "tol": self.tol,
            "patience": self.patience,
            "eps": self.eps,
            "l21_term": "sum over frames of per-frame RMS on the [0, 1] scale (reference code)",
        }

    def mask_for(self, video: torch.Tensor, labels: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
        """The ``bool (N, T)`` temporal mask this attack uses for ``video`` (model frozen)."""
        n, t = video.shape[:2]
        if self.mask_mode == "salient":
            return salient_frame_mask(self.model, video, labels, min(self.num_frames, t), target=target)
        if self.mask_mode == "given":
            row = frame_mask(t, self.frames)
        else:
            row = frame_mask(t, spread_frames(t, min(self.num_frames, t)))
        return row.to(video.device).expand(n, t).clone()

    def perturb(self, video, labels, target, generator):
        mask = self.mask_for(video, labels, target)
        return sparse_attack(
            self.model,
            video,
            labels,
            mask,
            target=target,
            lam=self.lam,
            lr=self.lr,
            steps=self.steps,
            tol=self.tol,
            patience=self.patience,
            eps=self.eps,
        )

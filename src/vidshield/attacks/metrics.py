"""Per-video measures of an adversarial perturbation, and the per-video attack report.

All norms are computed on the [0, 1] value scale of the tensor contract, on the *effective*
perturbation ``adv - clean`` (after clamping), unless the name says otherwise:

- ``perturbed_frames``: frames with any element ``|adv - clean| > 1e-8``.
- ``l21``: the l2,1 norm ``sum_t ||adv_t - clean_t||_2`` (true per-frame l2 norm over C*H*W,
  not the per-frame RMS that the sparse attack's loss uses).
- ``linf``: ``max |adv - clean|``.
- ``mean_abs_255``: mean absolute perturbation over every element of the clip (all frames,
  channels, pixels) on the 0-255 scale: the "MAP" of Wei et al. 2019.
- ``psnr``: ``10 log10(1 / MSE)`` over the whole clip, [0, 1] peak; ``inf`` for no change.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

from vidshield.video import check_video

__all__ = ["AttackReport", "perturbation_metrics", "PERTURBED_FRAME_TOL"]

PERTURBED_FRAME_TOL = 1e-8


@dataclass(frozen=True)
class AttackReport:
    """What an attack did to one video.

    Attributes:
        success: untargeted: ``pred_after != label``; targeted: ``pred_after == target``.
        label: the true label.
        pred_before: the model's prediction on the clean video.
        pred_after: the model's prediction on the adversarial video.
        target: the target class (targeted attacks), else ``None``.
        perturbed_frames, l21, linf, mean_abs_255, psnr: see :func:`perturbation_metrics`.
    """

    success: bool
    label: int
    pred_before: int
    pred_after: int
    target: int | None
    perturbed_frames: int
    l21: float
    linf: float
    mean_abs_255: float
    psnr: float

    def to_dict(self) -> dict:
        return asdict(self)


def perturbation_metrics(clean: torch.Tensor, adv: torch.Tensor) -> list[dict[str, float]]:
    """Measure ``adv - clean`` per video.

    Args:
        clean: ``float (N, T, 3, H, W)`` or ``(T, 3, H, W)`` in [0, 1].
        adv: same shape as ``clean``.

    Returns:
        One dict per video with ``perturbed_frames`` (int), ``l21``, ``linf``, ``mean_abs_255``,
        ``psnr`` (floats; definitions in the module docstring).
    """
    check_video(clean, name="clean", check_range=False)
    check_video(adv, name="adv", check_range=False)
    if clean.shape != adv.shape:
        raise ValueError(f"clean and adv must have the same shape, got {tuple(clean.shape)} and {tuple(adv.shape)}")
    if clean.dim() == 4:
        clean, adv = clean.unsqueeze(0), adv.unsqueeze(0)
    delta = (adv.detach().double() - clean.detach().double()).flatten(2)  # (N, T, C*H*W)
    absd = delta.abs()
    perturbed = (absd > PERTURBED_FRAME_TOL).any(dim=2).sum(dim=1)
    l21 = delta.norm(dim=2).sum(dim=1)
    linf = absd.amax(dim=(1, 2))
    mean_abs = absd.mean(dim=(1, 2)) * 255.0
    mse = delta.pow(2).mean(dim=(1, 2))
    out = []
    for i in range(delta.shape[0]):
        m = float(mse[i])
        out.append(
            {
                "perturbed_frames": int(perturbed[i]),
                "l21": float(l21[i]),
                "linf": float(linf[i]),
                "mean_abs_255": float(mean_abs[i]),
                "psnr": math.inf if m == 0.0 else 10.0 * math.log10(1.0 / m),
            }
        )
    return out

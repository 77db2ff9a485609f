"""The dense universal attack of Li et al., "Stealthy Adversarial Perturbations Against Real-Time
Video Classification Systems" (NDSS 2019): C-DUP and 2D-DUP, against a frozen C3D.

A generator maps noise ``z`` (100-d) through 3D transposed convolutions to one perturbation clip
(16 x 112 x 112 x 3 for C3D), ``p_max * tanh(.)`` with ``p_max = 10/255``; norm: l_inf <= p_max.
During training every batch sees the perturbation rolled in time by a random circular shift
(0 .. T-1), so it works wherever a clip starts. Losses (Li et al.): clips of the attacked
("target") class get ``-log(1 - p_target)``, the other clips ``-log(p_own)`` (stealth: they keep
their labels); in the universal untargeted mode every clip gets ``-log(1 - p_true)``. Adam,
lr 0.002 decayed by 0.95 every 2000 steps, beta1 = 0.3. The reference generator: a (1, 7, 7)
transposed convolution to 512 channels, then four stride-2 3x3x3 transposed convolutions
(256, 128, 64, 3 channels), batch norm + ReLU between, tanh at the end; weights N(0, 0.02).
2D-DUP: the same layers with temporal stride 1, one frame tiled over time.

After training, one fixed ``z`` gives the universal perturbation, stored with the generator as
a checkpoint (safetensors + JSON). :class:`UniversalAttack` adds it to clips of any length and
start (the perturbation is tiled periodically in time).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from vidshield.attacks.base import Attack, attack_mode, model_device
from vidshield.attacks.registry import register_attack
from vidshield.checkpoint import load_checkpoint, save_checkpoint
from vidshield.errors import CheckpointError
from vidshield.jsonio import field
from vidshield.models.checkpoints import resolve_artifact
from vidshield.text import printable
from vidshield.utils import eval_mode

__all__ = [
    "CDUPGenerator",
    "apply_universal",
    "train_universal",
    "UniversalAttack",
    "save_universal",
    "load_universal",
    "universal_loss",
    "sample_training_batch",
]

P_MAX = 10 / 255
UPSAMPLING_LAYERS = 4


class CDUPGenerator(nn.Module):
    """C-DUP / 2D-DUP generator: ``z (B, z_dim)`` -> perturbations ``(B, T, 3, H, W)`` in
    ``[-p_max, p_max]``.

    Args:
        frames, height, width: the perturbation clip size (C3D: 16 x 112 x 112).
        z_dim: noise size (100).
        channels: the widths of the four hidden layers (reference: 512, 256, 128, 64).
        p_max: the l_inf bound on the [0, 1] scale (10/255).
        two_d: 2D-DUP: one frame (no temporal upsampling), tiled over ``frames``.

    Each of the four upsampling layers doubles the size; the first layer makes a
    ``ceil(size / 16)`` grid (1 x 7 x 7 for C3D) and the output is cropped to the exact size.
    """

    def __init__(
        self,
        *,
        frames: int = 16,
        height: int = 112,
        width: int = 112,
        z_dim: int = 100,
        channels: tuple[int, int, int, int] = (512, 256, 128, 64),
        p_max: float = P_MAX,
        two_d: bool = False,
    ):
        super().__init__()
        if min(frames, height, width, z_dim) < 1 or len(channels) != UPSAMPLING_LAYERS or p_max <= 0:
            raise ValueError("need positive frames/height/width/z_dim/p_max and four channel widths")
        self.frames, self.height, self.width, self.z_dim = frames, height, width, z_dim
        self.channels, self.p_max, self.two_d = tuple(int(c) for c in channels), float(p_max), bool(two_d)
        scale = 2**UPSAMPLING_LAYERS
        t0 = 1 if two_d else math.ceil(frames / scale)
        first = (t0, math.ceil(height / scale), math.ceil(width / scale))
        layers: list[nn.Module] = [
            nn.ConvTranspose3d(z_dim, channels[0], kernel_size=first),
            nn.BatchNorm3d(channels[0], momentum=0.9, eps=1e-5),
            nn.ReLU(inplace=True),
        ]
        widths = list(self.channels) + [3]
        stride = (1, 2, 2) if two_d else (2, 2, 2)
        out_pad = (0, 1, 1) if two_d else (1, 1, 1)
        for i in range(UPSAMPLING_LAYERS):
            layers.append(
                nn.ConvTranspose3d(widths[i], widths[i + 1], 3, stride=stride, padding=1, output_padding=out_pad)
            )
            if i < UPSAMPLING_LAYERS - 1:
                layers += [nn.BatchNorm3d(widths[i + 1], momentum=0.9, eps=1e-5), nn.ReLU(inplace=True)]
        self.net = nn.Sequential(*layers)
        for m in self.net:
            if isinstance(m, nn.ConvTranspose3d):
                nn.init.normal_(m.weight, 0.0, 0.02)
                nn.init.zeros_(m.bias)

    def config(self) -> dict:
        return {
            "frames": self.frames,
            "height": self.height,
            "width": self.width,
            "z_dim": self.z_dim,
            "channels": list(self.channels),
            "p_max": self.p_max,
            "two_d": self.two_d,
        }

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must be (B, {self.z_dim}), got {tuple(z.shape)}")
        out = self.net(z.view(z.shape[0], self.z_dim, 1, 1, 1))  # (B, 3, t, h, w)
        out = out[:, :, :, : self.height, : self.width]
        out = out.expand(-1, -1, self.frames, -1, -1) if self.two_d else out[:, :, : self.frames]
        return torch.tanh(out).permute(0, 2, 1, 3, 4) * self.p_max  # (B, T, 3, H, W)

    @torch.no_grad()
    def perturbation(self, *, seed: int = 0) -> torch.Tensor:
        """The universal perturbation ``(T, 3, H, W)`` for the fixed noise drawn with ``seed``
        (eval mode: batch-norm running statistics; the previous mode is restored)."""
        with eval_mode(self):
            z = torch.randn(1, self.z_dim, generator=torch.Generator().manual_seed(seed))
            return self(z.to(model_device(self)))[0]


def apply_universal(video: torch.Tensor, perturbation: torch.Tensor, offset: int | torch.Tensor = 0) -> torch.Tensor:
    """Add a universal perturbation clip to videos of any length, periodically in time.

    Frame ``t`` of video ``i`` gets ``perturbation[(t + offset_i) mod P]``, then the result is
    clamped to [0, 1].

    Args:
        video: ``float (N, T, 3, H, W)`` in [0, 1].
        perturbation: ``float (P, 3, H, W)`` (same H, W as the video).
        offset: the start position in the perturbation clip: an int or ``int64 (N,)``.

    Returns:
        ``float (N, T, 3, H, W)`` in [0, 1].
    """
    if perturbation.dim() != 4 or perturbation.shape[1] != 3:
        raise ValueError(f"perturbation must be (P, 3, H, W), got {tuple(perturbation.shape)}")
    if video.shape[-2:] != perturbation.shape[-2:]:
        raise ValueError(
            f"the perturbation is {tuple(perturbation.shape[-2:])} (H, W) but the video is "
            f"{tuple(video.shape[-2:])}: resize or crop the clips to the perturbation's size"
        )
    n, t = video.shape[:2]
    p = perturbation.to(video.device, video.dtype)
    offsets = torch.as_tensor(offset, device=video.device).long().expand(n).view(n, 1)
    index = (torch.arange(t, device=video.device).view(1, t) + offsets) % p.shape[0]  # (N, T)
    return (video + p[index]).clamp(0.0, 1.0)


def universal_loss(
    logits: torch.Tensor, labels: torch.Tensor, target_class: int | None, *, floor: float = 1e-10
) -> torch.Tensor:
    """The training loss of Li et al. 2019 (mean over the batch).

    ``target_class`` None (universal untargeted): mean of ``-log(1 - p_true)``. Otherwise clips
    of ``target_class`` get ``-log(1 - p_target)`` and the others ``-log(p_own)``; the two
    groups' means are averaged (the reference trains on half target, half other clips).
    Probabilities are clipped to ``[floor, 1]`` inside the log, as in the reference.
    """
    p_true = logits.softmax(dim=1).gather(1, labels.view(-1, 1)).squeeze(1)
    fool = -torch.log((1.0 - p_true).clamp(floor, 1.0))
    if target_class is None:
        return fool.mean()
    keep = -torch.log(p_true.clamp(floor, 1.0))
    is_target = labels == target_class
    parts = [fool[is_target].mean()] if bool(is_target.any()) else []
    if bool((~is_target).any()):
        parts.append(keep[~is_target].mean())
    return torch.stack(parts).mean()


def sample_training_batch(
    labels: torch.Tensor, batch_size: int, target_class: int | None, generator: torch.Generator
) -> torch.Tensor:
    """Indices of one training batch: uniform without replacement; with a target class, half
    the batch from the target class's clips and half from the others (as in the reference)."""
    n = labels.shape[0]
    if target_class is None:
        return torch.randperm(n, generator=generator)[: min(batch_size, n)]
    pos = torch.nonzero(labels == target_class).flatten()
    neg = torch.nonzero(labels != target_class).flatten()
    if len(pos) == 0:
        raise ValueError(f"the training data has no clip of the target class {target_class}")
    half = max(1, batch_size // 2)
    take_pos = pos[torch.randint(len(pos), (half,), generator=generator)]
    if len(neg) == 0:
        return take_pos
    take_neg = neg[torch.randint(len(neg), (batch_size - half,), generator=generator)]
    return torch.cat([take_pos, take_neg])


def train_universal(
    generator_net: CDUPGenerator,
    model: nn.Module,
    videos: torch.Tensor,
    labels: torch.Tensor,
    *,
    target_class: int | None = None,
    steps: int = 1000,
    batch_size: int = 16,
    lr: float = 0.002,
    betas: tuple[float, float] = (0.3, 0.999),
    lr_decay: float = 0.95,
    decay_every: int = 2000,
    seed: int = 0,
    progress: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Train a C-DUP / 2D-DUP generator against a frozen classifier (Li et al. 2019).

    Each step draws a batch (see :func:`sample_training_batch`), one noise vector per clip and
    one random circular time shift in ``0 .. P-1``, and minimises :func:`universal_loss` on
    ``clamp(clip + roll(G(z), shift), 0, 1)``. The generator is trained in place on the model's
    device; the model is frozen (eval mode) and restored afterwards.

    Args:
        generator_net: the generator; its ``frames, height, width`` must match the clips' size.
        model: the victim classifier (the paper: C3D).
        videos: training clips ``float (M, T, 3, H, W)`` in [0, 1] (on any device).
        labels: ``int64 (M,)``.
        target_class: the class whose clips should be misclassified; None for the universal
            untargeted mode.
        steps, batch_size: optimisation length.
        lr, betas, lr_decay, decay_every: Adam with staircase exponential decay (reference).
        seed: seeds the batches, noise and shifts.
        progress: called as ``progress(step, loss)`` after every step.

    Returns:
        The loss of every step.
    """
    if videos.dim() != 5 or videos.shape[2] != 3 or labels.shape != (videos.shape[0],):
        raise ValueError(
            f"videos must be (M, T, 3, H, W) with labels (M,), got {tuple(videos.shape)}, {tuple(labels.shape)}"
        )
    if tuple(videos.shape[-2:]) != (generator_net.height, generator_net.width):
        raise ValueError(
            f"generator makes {generator_net.height}x{generator_net.width} perturbations, clips are "
            f"{videos.shape[-2]}x{videos.shape[-1]}"
        )
    if steps < 1 or batch_size < 1:
        raise ValueError("need steps >= 1 and batch_size >= 1")
    device = model_device(model)
    generator_net.to(device).train()
    rng = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(generator_net.parameters(), lr=lr, betas=betas)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=decay_every, gamma=lr_decay)
    params = [p for p in generator_net.parameters() if p.requires_grad]
    labels = labels.to(torch.int64)
    losses = []
    with attack_mode(model):
        for step in range(steps):
            idx = sample_training_batch(labels, batch_size, target_class, rng)
            x = videos[idx].to(device, torch.float32)
            y = labels[idx].to(device)
            z = torch.randn(len(idx), generator_net.z_dim, generator=rng).to(device)
            shift = int(torch.randint(generator_net.frames, (1,), generator=rng))
            p = generator_net(z)  # (B, P, 3, H, W)
            t = x.shape[1]
            index = (torch.arange(t, device=device) - shift) % generator_net.frames
            adv = (x + p[:, index]).clamp(0.0, 1.0)
            loss = universal_loss(model(adv), y, target_class)
            grads = torch.autograd.grad(loss, params)
            for prm, g in zip(params, grads):
                prm.grad = g
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
            if progress is not None:
                progress(step, losses[-1])
    generator_net.eval()
    return losses


def train_cdup(
    model: nn.Module,
    videos: torch.Tensor,
    labels: torch.Tensor,
    path: str | Path,
    *,
    p_max: float = P_MAX,
    two_d: bool = False,
    steps: int = 1000,
    lr: float = 0.002,
    target_class: int | None = None,
    seed: int = 0,
    progress: Callable[[int, float], None] | None = None,
    metadata: dict | None = None,
) -> torch.Tensor:
    """Train a C-DUP (or 2D-DUP) generator at the clips' size against ``model`` and save its
    universal perturbation (noise seed ``seed``) with the generator to ``path`` (the one home of
    C-DUP training: ``vidshield attack --attack dense`` and the reproduction both call it).

    Args:
        model, videos, labels, target_class, steps, lr, seed, progress: as :func:`train_universal`.
        path: the checkpoint to write (``.safetensors`` + ``.json``).
        p_max: l_inf bound of the perturbation; two_d: 2D-DUP instead of C-DUP.
        metadata: recorded in the checkpoint's JSON, with ``target_class`` and ``final_loss``.

    Returns:
        The perturbation ``float32 (P, 3, H, W)`` on the CPU.
    """
    t, _, h, w = videos.shape[1:]
    gen = CDUPGenerator(frames=t, height=h, width=w, p_max=p_max, two_d=two_d).to(model_device(model))
    losses = train_universal(
        gen, model, videos, labels, target_class=target_class, steps=steps, lr=lr, seed=seed, progress=progress
    )
    perturbation = gen.perturbation(seed=seed).detach().cpu()
    meta = {**(metadata or {}), "target_class": target_class, "final_loss": losses[-1]}
    save_universal(path, perturbation, generator_net=gen.cpu(), metadata=meta)
    return perturbation


class UniversalAttack(Attack):
    """Adds one universal perturbation (C-DUP / 2D-DUP, Li et al. 2019) to every clip; norm: l_inf.

    Args:
        model: the classifier used to report success (the perturbation does not depend on it).
        perturbation: ``float (P, 3, H, W)`` in ``[-1, 1]``, or a trained :class:`CDUPGenerator`
            (its perturbation for ``z_seed`` is used).
        offset: where in the perturbation clip each video starts: an int, or "random" (drawn
            per video from the ``generator`` passed to the call).
        z_seed: the noise seed when ``perturbation`` is a generator.
        target_class: the class the perturbation was trained to attack (recorded only).

    Example:
        >>> attack = UniversalAttack(model, perturbation)
        >>> adv = attack(video, labels)
    """

    name = "dense"

    def __init__(
        self,
        model: nn.Module,
        perturbation: torch.Tensor | CDUPGenerator,
        *,
        offset: int | str = 0,
        z_seed: int = 0,
        target_class: int | None = None,
    ):
        super().__init__(model, targeted=False)
        if isinstance(perturbation, CDUPGenerator):
            perturbation = perturbation.perturbation(seed=z_seed)
        if not isinstance(perturbation, torch.Tensor) or perturbation.dim() != 4 or perturbation.shape[1] != 3:
            raise ValueError("perturbation must be a (P, 3, H, W) tensor or a CDUPGenerator")
        if offset != "random" and not isinstance(offset, int):
            raise ValueError(f'offset must be an int or "random", got {offset!r}')
        self.perturbation = perturbation.detach()
        self.offset = offset
        self.target_class = target_class

    def config(self) -> dict:
        return {
            **super().config(),
            "offset": self.offset,
            "frames": self.perturbation.shape[0],
            "linf": float(self.perturbation.abs().max()),
            "target_class": self.target_class,
        }

    def perturb(self, video, labels, target, generator):
        p_len = self.perturbation.shape[0]
        if self.offset == "random":
            offset = torch.randint(p_len, (video.shape[0],), generator=generator).to(video.device)
        else:
            offset = self.offset
        return apply_universal(video, self.perturbation.to(video.device), offset)


def save_universal(
    path: str | Path,
    perturbation: torch.Tensor,
    *,
    generator_net: CDUPGenerator | None = None,
    metadata: dict | None = None,
) -> Path:
    """Save a universal perturbation (and optionally its generator) as safetensors + JSON.

    Returns the ``.safetensors`` path. The JSON holds the generator config and ``metadata``.
    """
    state = {"perturbation": perturbation.detach()}
    meta = {"kind": "universal-perturbation", **(metadata or {})}
    if generator_net is not None:
        state.update({f"generator.{k}": v for k, v in generator_net.state_dict().items()})
        meta["generator"] = generator_net.config()
        meta["variant"] = "2d-dup" if generator_net.two_d else "c-dup"
    return save_checkpoint(path, state, meta)


def load_universal(
    path: str | Path, *, device: str | torch.device = "cpu"
) -> tuple[torch.Tensor, CDUPGenerator | None, dict]:
    """Load ``(perturbation (P, 3, H, W), generator or None, metadata)`` saved by :func:`save_universal`
    (``path``: a checkpoint path or a name shipped in the zoo, such as ``synthetic-c3d-cdup``)."""
    path = resolve_artifact(path, kind="universal perturbation")
    state, meta = load_checkpoint(path, device=device)
    if meta.get("kind") != "universal-perturbation" or "perturbation" not in state:
        raise CheckpointError(
            f"{path} is not a universal perturbation checkpoint (kind={printable(repr(meta.get('kind')))[:60]})"
        )
    check = dict(what=f"generator metadata {printable(path)}", error=CheckpointError)
    field(meta, "target_class", (int, type(None)), lo=0, **check)
    perturbation = state["perturbation"]
    if perturbation.dim() != 4 or perturbation.shape[0] < 1 or perturbation.shape[1] != 3:
        raise CheckpointError(f"{path}: the perturbation is {tuple(perturbation.shape)}, not (P, 3, H, W)")
    if not perturbation.is_floating_point() or not bool(torch.isfinite(perturbation).all()):
        raise CheckpointError(f"{path}: the perturbation holds NaN or infinite values (or is not floating point)")
    if float(perturbation.abs().max()) > 1:
        raise CheckpointError(f"{path}: the perturbation exceeds 1 in magnitude: not a perturbation of [0, 1] video")
    gen = None
    if "generator" in meta:
        g = field(meta, "generator", dict, **check)
        cfg = {k: field(g, k, int, lo=1, hi=1 << 20, **check) for k in ("frames", "height", "width", "z_dim")}
        cfg["channels"] = tuple(field(g, "channels", list, max_len=UPSAMPLING_LAYERS, items=int, **check))
        cfg["p_max"] = field(g, "p_max", float, lo=0.0, hi=1.0, **check)
        cfg["two_d"] = field(g, "two_d", bool, **check)
        weights = {k[len("generator.") :]: v for k, v in state.items() if k.startswith("generator.")}
        try:
            with torch.device("meta"):  # no memory: checked against the weights before it is built
                skeleton = CDUPGenerator(**cfg)
        except (ValueError, TypeError, RuntimeError) as e:
            raise CheckpointError(f"{check['what']}: cannot rebuild the generator: {printable(e)}") from e
        shapes = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
        if shapes != {k: tuple(v.shape) for k, v in weights.items()}:
            raise CheckpointError(f"{path}: the generator weights do not fit the generator its metadata describes")
        if not all(bool(torch.isfinite(v).all()) for v in weights.values() if v.is_floating_point()):
            raise CheckpointError(f"{path}: the generator weights hold NaN or infinite values")
        gen = CDUPGenerator(**cfg)
        gen.load_state_dict(weights)
        gen.to(device).eval()
    return state["perturbation"], gen, meta


@register_attack("dense")
def dense_attack(
    model: nn.Module, *, checkpoint: str | Path | None = None, perturbation=None, **kwargs
) -> UniversalAttack:
    """The registry's ``dense`` attack: a universal perturbation given as a tensor (or generator),
    or loaded from a checkpoint of :func:`save_universal` (its ``target_class`` is recorded when
    none is given); other keyword arguments go to :class:`UniversalAttack`."""
    if (checkpoint is None) == (perturbation is None):
        raise ValueError("give exactly one of checkpoint, perturbation")
    if checkpoint is not None:
        perturbation, _, meta = load_universal(checkpoint)
        spec = getattr(model, "input_spec", None)
        if spec is not None and tuple(perturbation.shape[-2:]) != (spec.height, spec.width):
            raise CheckpointError(
                f"{printable(checkpoint)}: the perturbation is {perturbation.shape[-2]}x{perturbation.shape[-1]} "
                f"but the model takes {spec.height}x{spec.width} frames: made for another model"
            )
        kwargs.setdefault("target_class", meta.get("target_class"))
    return UniversalAttack(model, perturbation, **kwargs)

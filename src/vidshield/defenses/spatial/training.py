"""Training ComDefend on random crops of video frames.

The paper's ComDefend was trained on 32x32 CIFAR-10 images. CIFAR-10 is not available offline
here, so vidshield trains on random 32x32 crops of video frames (the synthetic data set,
UT-Interaction, UCF101 or any folder of videos): the same objective on the frames the defense
will actually purify.

Objective (official code): ``code = sigmoid(linear - n)``, ``n ~ N(0, sigma^2)``, sigma = 20,
``loss = mean((rec - x)^2) + 1e-4 * mean(code^2)``, Adam. Validation purifies held-out crops with
*binarised* codes (as the defense does) and reports their mean PSNR.

Checkpoints (safetensors + JSON, written atomically):

- ``OUT.safetensors`` / ``OUT.json``: the weights with the best validation PSNR so far, loadable
  by :func:`~vidshield.defenses.spatial.comdefend.load_comdefend` / ``SpatialDefense(weights=OUT)``.
- ``OUT-last.safetensors`` / ``OUT-last.json``: the resumable state
  (:func:`vidshield.checkpoint.save_training_state`): weights, Adam moments, the step and both
  random generators' states. No pickle anywhere.

Under ``torchrun`` (see :mod:`vidshield.ddp`) ``batch_size`` is the global batch:
every process draws the same crops and trains on its contiguous share, with its rows of the
training noise, so the run equals one process (exactly on CPUs, for an even crop side). Rank 0
validates and writes the checkpoints, which resume on any number of processes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from vidshield import __version__, ddp
from vidshield.checkpoint import (
    checkpoint_paths,
    last_state_path,
    load_training_state,
    save_checkpoint,
    save_training_state,
)
from vidshield.defenses.spatial.comdefend import (
    ARCHITECTURE,
    CODE_CHANNELS,
    TRAIN_NOISE_SIGMA,
    ComDefend,
    comdefend_loss,
    cpu_supports_bf16,
    load_comdefend,
)
from vidshield.errors import CheckpointError, DataRootError
from vidshield.io.read import uniform_indices
from vidshield.jsonio import field as json_field
from vidshield.text import printable
from vidshield.utils import eval_mode, progress_bar
from vidshield.video import to_uint8

TRAINING_DATA_NOTE = (
    "The paper trained ComDefend on CIFAR-10, which is not available offline; these weights were "
    "trained on random crops of video frames instead (see 'data')."
)


# --------------------------------------------------------------------------------------------
# Frame pools and random crops
# --------------------------------------------------------------------------------------------


def _as_uint8_frames(clip: torch.Tensor) -> torch.Tensor:
    """float ``(T, 3, H, W)`` in [0, 1] or uint8 ``(T, H, W, 3)`` -> uint8 ``(T, H, W, 3)``."""
    if clip.dtype == torch.uint8:
        if clip.dim() != 4 or clip.shape[-1] != 3:
            raise ValueError(f"uint8 frames must be (N, H, W, 3); got shape {tuple(clip.shape)}")
        return clip
    if not clip.is_floating_point() or clip.dim() != 4 or clip.shape[1] != 3:
        raise ValueError(
            f"a clip must be float (T, 3, H, W) in [0, 1] or uint8 (T, H, W, 3); got {clip.dtype} {tuple(clip.shape)}"
        )
    return to_uint8(clip).permute(0, 2, 3, 1).contiguous()


class FrameCropSampler:
    """Random square crops from a pool of frames, kept as uint8 to save memory.

    Args:
        pools: uint8 tensors ``(N_i, H_i, W_i, 3)``; sizes may differ between pools. Every frame
            of every pool is equally likely to be drawn.
        crop: default side of the square crops returned by :meth:`sample` (at most :attr:`max_crop`).

    Example:
        >>> sampler = FrameCropSampler.from_clips([torch.rand(8, 3, 64, 64)])
        >>> sampler.sample(4, generator=torch.Generator().manual_seed(0)).shape
        torch.Size([4, 3, 32, 32])
    """

    def __init__(self, pools: Sequence[torch.Tensor], *, crop: int = 32):
        if crop < 1:
            raise ValueError(f"crop must be >= 1, got {crop}")
        pools = [p for p in pools if p.shape[0] > 0] if pools else []
        for p in pools:
            if p.dtype != torch.uint8 or p.dim() != 4 or p.shape[-1] != 3:
                raise ValueError(f"frame pools must be uint8 (N, H, W, 3); got {p.dtype} {tuple(p.shape)}")
        if not pools:
            raise ValueError("the frame pool is empty")
        self.pools = [p.contiguous() for p in pools]
        self.crop = int(crop)
        self._ends = torch.tensor([p.shape[0] for p in self.pools]).cumsum(0)

    @classmethod
    def from_clips(cls, clips: Iterable[torch.Tensor], *, crop: int = 32) -> FrameCropSampler:
        """Clips as float ``(T, 3, H, W)`` in [0, 1] or uint8 ``(T, H, W, 3)``; clips of the same
        size are stacked into one pool."""
        by_size: dict[tuple[int, int], list[torch.Tensor]] = {}
        for clip in clips:
            frames = _as_uint8_frames(clip)
            by_size.setdefault(tuple(frames.shape[1:3]), []).append(frames)
        return cls([torch.cat(group) for group in by_size.values()], crop=crop)

    @classmethod
    def from_dataset(
        cls, dataset, *, crop: int = 32, max_clips: int | None = None, progress: bool = False
    ) -> FrameCropSampler:
        """Decode items ``(video, label)`` of a data set once into a pool: all of them, or
        ``max_clips`` spread evenly over the data set (so every class is represented)."""
        count = len(dataset) if max_clips is None else min(len(dataset), max_clips)
        indices = uniform_indices(len(dataset), count).tolist() if count else []
        with progress_bar(disable=not progress) as bar:
            items = bar.track(indices, description=f"decoding {count} clips")
            return cls.from_clips((dataset[i][0] for i in items), crop=crop)

    @classmethod
    def load(cls, path: str | Path, *, crop: int = 32) -> FrameCropSampler:
        """Read a frames file: a safetensors file of uint8 ``(N, H, W, 3)`` tensors (any names)."""
        path = Path(path)
        if not path.is_file():
            raise DataRootError(f"frames file not found: {path}")
        try:
            tensors = load_file(str(path))
        except Exception as e:  # safetensors raises several types for a bad file
            raise DataRootError(f"{path} is not a safetensors frames file: {e}") from e
        try:
            return cls([tensors[k] for k in sorted(tensors)], crop=crop)
        except ValueError as e:
            raise DataRootError(f"{path}: {e}") from e

    def save(self, path: str | Path) -> Path:
        """Write the pool as a frames file (see :meth:`load`)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        save_file({f"frames_{i:04d}": p for i, p in enumerate(self.pools)}, str(tmp))
        tmp.replace(path)
        return path

    @property
    def num_frames(self) -> int:
        return int(self._ends[-1])

    def split(self, fraction: float) -> tuple[FrameCropSampler, FrameCropSampler]:
        """``(train, held_out)``: the last ``fraction`` of every pool's frames is held out.

        Pools hold clips one after another, so the held-out frames are mostly whole clips.
        """
        if not 0 < fraction < 1:
            raise ValueError(f"fraction must lie in (0, 1), got {fraction}")
        if self.num_frames < 2:
            raise ValueError("need at least 2 frames to hold some out")
        train, held = [], []
        for p in self.pools:
            k = min(max(1, round(p.shape[0] * fraction)), p.shape[0])
            train.append(p[: p.shape[0] - k])
            held.append(p[p.shape[0] - k :])
        if all(t.shape[0] == 0 for t in train):
            train, held = [p[:-1] for p in self.pools], [p[-1:] for p in self.pools]
        return FrameCropSampler(train, crop=self.crop), FrameCropSampler(held, crop=self.crop)

    @property
    def max_crop(self) -> int:
        """The largest square crop every frame can give."""
        return min(min(p.shape[1], p.shape[2]) for p in self.pools)

    def sample(
        self, batch_size: int, *, crop: int | None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Draw ``batch_size`` crops: uniform over frames, then uniform over positions.

        Returns:
            ``float32 (batch_size, 3, crop, crop)`` in [0, 1] (on the CPU).
        """
        crop = self.crop if crop is None else crop
        if crop > self.max_crop:
            raise ValueError(f"crop {crop} is larger than the smallest frame side {self.max_crop}")
        frame = torch.randint(self.num_frames, (batch_size,), generator=generator)
        uy, ux = torch.rand(2, batch_size, generator=generator)
        pool_of = torch.searchsorted(self._ends, frame, right=True)
        out = torch.empty(batch_size, crop, crop, 3, dtype=torch.uint8)
        offsets = torch.arange(crop)
        for i, pool in enumerate(self.pools):
            hit = (pool_of == i).nonzero().squeeze(1)
            if hit.numel() == 0:
                continue
            local = frame[hit] - (self._ends[i] - pool.shape[0])
            ys = (uy[hit] * (pool.shape[1] - crop + 1)).long()
            xs = (ux[hit] * (pool.shape[2] - crop + 1)).long()
            rows = (ys[:, None] + offsets)[:, :, None]
            cols = (xs[:, None] + offsets)[:, None, :]
            out[hit] = pool[local[:, None, None], rows, cols]
        return out.permute(0, 3, 1, 2).float().div_(255.0)


def as_sampler(source, *, crop: int = 32) -> FrameCropSampler:
    """A :class:`FrameCropSampler`, a uint8 frame pool ``(N, H, W, 3)``, a list of clips, or a
    data set of ``(video, label)`` items -> a :class:`FrameCropSampler`."""
    if isinstance(source, FrameCropSampler):
        return source
    if isinstance(source, torch.Tensor):
        return FrameCropSampler([_as_uint8_frames(source)], crop=crop)
    if isinstance(source, (list, tuple)):
        return FrameCropSampler.from_clips(source, crop=crop)
    if hasattr(source, "__getitem__") and hasattr(source, "__len__"):
        return FrameCropSampler.from_dataset(source, crop=crop)
    raise ValueError(f"cannot draw frames from a {type(source).__name__}")


# --------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB of images in [0, 1]: ``(N, ...)`` x ``(N, ...)`` -> ``(N,)``."""
    mse = (a.float() - b.float()).square().flatten(1).mean(1)
    return -10.0 * torch.log10(mse.clamp_min(1e-10))


@torch.no_grad()
def evaluate_psnr(
    model: ComDefend,
    crops: torch.Tensor,
    *,
    train_noise_sigma: float | None = None,
    batch_size: int = 64,
    seed: int = 0,
) -> dict[str, float]:
    """Purify held-out ``crops`` ``(N, 3, h, w)`` in [0, 1]; float32 on the model's device.

    Returns:
        ``psnr_db``: mean PSNR with binarised codes (what the defense does); ``bit_ones``: the
        fraction of code bits that are 1; with ``train_noise_sigma``, also ``noisy_psnr_db``:
        mean PSNR of the training-time reconstruction ``decode(sigmoid(linear - noise))``
        (seeded by ``seed``). Early in training the decoder relies on the noise as dither, so
        the binarised PSNR lags the noisy one until the codes grow far from 0.
    """
    with eval_mode(model):
        device = next(model.parameters()).device
        generator = torch.Generator(device=device).manual_seed(seed)
        values, noisy, ones = [], [], []
        for chunk in crops.split(batch_size):
            x = chunk.to(device)
            linear = model.encode(x)
            bits = model.binarize(linear)
            values.append(psnr(model.decode(bits), x).cpu())
            ones.append(bits.mean().cpu())
            if train_noise_sigma is not None:
                noise = torch.randn(linear.shape, generator=generator, device=device)
                noisy.append(psnr(model.decode(torch.sigmoid(linear - train_noise_sigma * noise)), x).cpu())
    out = {"psnr_db": float(torch.cat(values).mean()), "bit_ones": float(torch.stack(ones).mean())}
    if noisy:
        out["noisy_psnr_db"] = float(torch.cat(noisy).mean())
    return out


# --------------------------------------------------------------------------------------------
# The training loop
# --------------------------------------------------------------------------------------------


@dataclass
class TrainResult:
    """What :func:`train_comdefend` returns.

    Attributes:
        model: the trained model (weights of the last step, in train mode).
        step: steps done in total (including resumed ones).
        losses: the training loss of every step run in this call.
        history: one dict per validation: ``step``, ``loss`` (mean since the last one),
            ``val_psnr_db`` (binarised code), ``val_noisy_psnr_db`` (training-time noisy code),
            ``val_bit_ones``, ``seconds``.
        best_psnr_db: the best validation PSNR (the weights saved at ``OUT``).
        weights_path: ``OUT.safetensors`` when ``out`` was given.
    """

    model: ComDefend
    step: int
    losses: list[float] = field(default_factory=list)
    history: list[dict] = field(default_factory=list)
    best_psnr_db: float = -math.inf
    weights_path: Path | None = None


def _resolve_amp(amp: bool | None, device: torch.device) -> bool:
    if amp is None:
        return device.type == "cuda" or (device.type == "cpu" and cpu_supports_bf16())
    return bool(amp)


def train_comdefend(
    frames_source,
    *,
    val_source=None,
    steps: int = 20000,
    batch_size: int = 64,
    crop: int = 32,
    lr: float = 1e-3,
    sigma: float = TRAIN_NOISE_SIGMA,
    code_weight: float = 1e-4,
    device: str | torch.device = "cpu",
    out: str | Path | None = None,
    resume: bool = False,
    seed: int = 0,
    amp: bool | None = None,
    val_every: int = 500,
    val_crops: int = 256,
    val_crop: int = 64,
    val_fraction: float = 0.1,
    init: str | Path | None = None,
    metadata: dict | None = None,
    progress: bool = False,
) -> TrainResult:
    """Train a :class:`ComDefend` on random ``crop`` x ``crop`` crops of video frames.

    Args:
        frames_source: where training crops come from: a :class:`FrameCropSampler`, a uint8
            frame pool ``(N, H, W, 3)``, a list of clips ``(T, 3, H, W)``, or a data set of
            ``(video, label)`` items (decoded once).
        val_source: held-out frames, same kinds; None holds out the last ``val_fraction`` of the
            training frames.
        steps: total optimisation steps (a resumed run continues up to this number).
        batch_size: crops per step (under torchrun: the global batch, split over the processes).
        crop: training crop side (the paper: 32x32 CIFAR-10 images).
        lr: Adam learning rate.
        sigma: std of the noise subtracted from the linear code before the sigmoid (paper: 20).
        code_weight: weight of ``mean(code^2)`` in the loss (paper: 1e-4).
        device: torch device.
        out: checkpoint stem (``OUT.safetensors`` best weights, ``OUT-last.*`` resumable state);
            None keeps everything in memory.
        resume: continue from ``OUT-last`` when it exists.
        seed: seeds the initial weights, the crop sampler and the training noise.
        amp: bfloat16 autocast; None: on CUDA, and on CPUs with native bf16 kernels.
        val_every: validate (and checkpoint) every this many steps, and at the end.
        val_crops, val_crop: number and side of the fixed held-out crops used for validation
            (the side is capped at the smallest held-out frame side).
        val_fraction: share of frames held out when ``val_source`` is None.
        init: start from these ComDefend weights (a path or a zoo name, e.g. ``"comdefend"``)
            instead of ``seed``'s random ones: fine-tuning. A resumed run takes its weights from
            ``OUT-last`` (it must have been started with the same ``init``).
        metadata: extra JSON-able entries for the checkpoint metadata (data sets, command).
        progress: show a rich progress bar.

    Returns:
        a :class:`TrainResult`.
    """
    if steps < 0 or batch_size < 1 or val_every < 1 or val_crops < 1:
        raise ValueError("steps must be >= 0; batch_size, val_every and val_crops must be >= 1")
    if lr <= 0 or sigma < 0 or code_weight < 0:
        raise ValueError("lr must be > 0, sigma and code_weight >= 0")
    if resume and out is None:
        raise ValueError("resume needs out (the checkpoint stem to resume from)")
    world = ddp.world()
    if batch_size < world.size:
        raise ValueError(f"the global batch ({batch_size}) is smaller than the number of processes ({world.size})")
    device = torch.device(device)
    use_amp = _resolve_amp(amp, device)

    train_sampler = as_sampler(frames_source, crop=crop)
    if crop > train_sampler.max_crop:
        raise ValueError(f"crop {crop} is larger than the smallest training frame side {train_sampler.max_crop}")
    if val_source is None:
        train_sampler, val_sampler = train_sampler.split(val_fraction)
    else:
        val_sampler = as_sampler(val_source, crop=crop)
    val_side = min(val_crop, val_sampler.max_crop)
    val_x = val_sampler.sample(val_crops, crop=val_side, generator=torch.Generator().manual_seed(seed + 1))

    with torch.random.fork_rng(devices=[]):  # seeded initial weights, global RNG left untouched
        torch.manual_seed(seed)
        model = ComDefend()
    if init is not None:
        model.load_state_dict(load_comdefend(init)[0].state_dict())
    model = model.to(device).to(memory_format=torch.channels_last).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    crop_rng = torch.Generator().manual_seed(seed)
    noise_rng = torch.Generator(device=device).manual_seed(seed + 2)

    config = {
        "steps": steps,
        "batch_size": batch_size,
        "crop": crop,
        "lr": lr,
        "sigma": sigma,
        "code_weight": code_weight,
        "seed": seed,
        "amp_bf16": use_amp,
        "device": str(device),
        "val_crops": val_crops,
        "val_crop": val_side,
        "optimizer": "Adam",
        "train_frames": train_sampler.num_frames,
        "val_frames": val_sampler.num_frames,
        "init": None if init is None else str(init),
    }
    step, best, history = 0, -math.inf, []
    last_path = last_state_path(out) if out is not None else None
    generators = {"crops": crop_rng, "noise": noise_rng}
    if resume and last_path.is_file():

        def check(meta: dict) -> None:
            saved = json_field(meta, "config", dict, what=f"training state {last_path}", error=CheckpointError)
            for key in ("crop", "sigma", "code_weight", "batch_size", "init"):
                if saved.get(key) != config[key]:
                    raise CheckpointError(
                        f"cannot resume {last_path}: it was trained with {key}={printable(repr(saved.get(key)))[:40]}, "
                        f"not {config[key]}"
                    )

        meta = load_training_state(last_path, model=model, optimizer=optimizer, generators=generators, check=check)
        for group in optimizer.param_groups:
            group["lr"] = lr
        what = dict(what=f"training state {last_path}", error=CheckpointError)
        step = json_field(meta, "step", int, lo=0, **what)
        best = json_field(meta, "best_psnr_db", float, **what)
        history = list(json_field(meta, "history", list, items=dict, **what))
    trainer = ddp.wrap(model, device)
    first, stop = ddp.share(batch_size, world)
    noise_per_crop, noise_dtype = CODE_CHANNELS * crop * crop, torch.bfloat16 if use_amp else torch.float32

    def base_metadata() -> dict:
        return {
            "architecture": ARCHITECTURE,
            "code_channels": CODE_CHANNELS,
            "vidshield_version": __version__,
            "training": config,
            "training_data_note": TRAINING_DATA_NOTE,
            **(metadata or {}),
        }

    def save_last() -> None:
        metadata = {**base_metadata(), "step": step, "best_psnr_db": best, "history": history, "config": config}
        save_training_state(last_path, model=model, optimizer=optimizer, generators=generators, metadata=metadata)

    result = TrainResult(model=model, step=step, history=history, best_psnr_db=best)
    if out is not None:
        result.weights_path = checkpoint_paths(out)[0]

    def validate(mean_loss: float, seconds: float) -> None:
        nonlocal best
        if not world.is_main:
            return
        metrics = evaluate_psnr(model, val_x, train_noise_sigma=sigma, seed=seed)
        history.append(
            {
                "step": step,
                "loss": mean_loss,
                "val_psnr_db": metrics["psnr_db"],
                "val_noisy_psnr_db": metrics["noisy_psnr_db"],
                "val_bit_ones": metrics["bit_ones"],
                "seconds": round(seconds, 2),
            }
        )
        if metrics["psnr_db"] > best:
            best = metrics["psnr_db"]
            if out is not None:
                meta = {
                    **base_metadata(),
                    "step": step,
                    "metrics": {
                        "val_psnr_db": best,
                        "val_bit_ones": metrics["bit_ones"],
                        "val_note": f"{val_crops} held-out {val_side}x{val_side} crops, binarised code, float32",
                    },
                    "history": history,
                }
                save_checkpoint(out, model.state_dict(), meta)
        if out is not None:
            save_last()

    start, window = time.perf_counter(), []
    with progress_bar("{task.fields[status]}", disable=not (progress and world.is_main)) as bar:
        task = bar.add_task("train-comdefend", total=steps, completed=step, status="")
        while step < steps:
            x = train_sampler.sample(batch_size, generator=crop_rng)[first:stop].to(device)
            x = x.contiguous(memory_format=torch.channels_last)
            ddp.skip_normals(noise_rng, first * noise_per_crop, dtype=noise_dtype)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                out_dict = trainer(x, train_noise_sigma=sigma, generator=noise_rng)
            ddp.skip_normals(noise_rng, (batch_size - stop) * noise_per_crop, dtype=noise_dtype)
            loss = comdefend_loss(x, out_dict, code_weight=code_weight)
            optimizer.zero_grad(set_to_none=True)
            (loss * (world.size * (stop - first) / batch_size) if world.distributed else loss).backward()
            optimizer.step()
            step += 1
            value = float(loss.detach())
            if world.distributed:  # the global batch's mean loss
                value = ddp.all_sum([value * (stop - first)])[0] / batch_size
            result.losses.append(value)
            window.append(value)
            if step % val_every == 0 or step == steps:
                validate(sum(window) / len(window), time.perf_counter() - start)
                window = []
            last = history[-1] if history else None
            status = f"loss {value:.5f}" + (f"  val {last['val_psnr_db']:.2f} dB @ {last['step']}" if last else "")
            bar.update(task, completed=step, status=status)
    if not history or history[-1]["step"] != step:  # nothing run in this call: report the state
        validate(float("nan"), time.perf_counter() - start)
    result.step, result.best_psnr_db = step, best
    ddp.finish()
    return result

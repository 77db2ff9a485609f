"""``vidshield train-comdefend``: train the ComDefend spatial defense on random crops of video frames."""

from __future__ import annotations

from pathlib import Path

import click

from vidshield.cli.options import (
    command_line,
    device_option,
    echo_json,
    json_option,
    resolve_device,
    resume_option,
    seed_option,
)
from vidshield.utils import seed_everything

DATASET_CHOICES = ("synthetic", "ut-interaction", "ucf101", "folder")


def _parse_size(value: str) -> tuple[int, int] | None:
    """``HxW`` -> ``(H, W)``; ``native`` -> None (each video's own size)."""
    if value.lower() == "native":
        return None
    try:
        h, w = (int(v) for v in value.lower().split("x"))
    except ValueError:
        raise click.BadParameter(
            f"expected HxW such as 112x112, or native; got {value!r}", param_hint="--size"
        ) from None
    if h < 1 or w < 1:
        raise click.BadParameter(f"sizes must be positive, got {value!r}", param_hint="--size")
    return h, w


def _roots(values: tuple[str, ...], datasets: tuple[str, ...]) -> dict[str, str | None]:
    """``--root PATH`` applies to every file data set; ``--root NAME=PATH`` to one."""
    roots: dict[str, str | None] = {name: None for name in datasets}
    for value in values:
        name, sep, path = value.partition("=")
        if sep and name in DATASET_CHOICES:
            if name not in roots:
                raise click.BadParameter(f"--root given for {name}, which is not among the --dataset values")
            roots[name] = path
        else:
            for key in roots:
                if key != "synthetic":
                    roots[key] = value
    return roots


def _pool(datasets, roots, *, split, clips, frames, size, seed, progress):
    from vidshield.data import make_dataset
    from vidshield.defenses.spatial.training import FrameCropSampler

    pools, described = [], []
    for name in datasets:
        options = {"num_videos": clips} if name == "synthetic" else {}
        dataset = make_dataset(name, root=roots[name], split=split, frames=frames, size=size, seed=seed, **options)
        sampler = FrameCropSampler.from_dataset(dataset, max_clips=clips, progress=progress)
        pools += sampler.pools
        described.append(
            {
                "name": name,
                "root": roots[name],
                "split": split,
                "frames": sampler.num_frames,
                "clips": min(len(dataset), clips),
            }
        )
    return FrameCropSampler(pools), described


@click.command("train-comdefend")
@click.option(
    "--dataset",
    "datasets",
    multiple=True,
    type=click.Choice(DATASET_CHOICES),
    help="Data set(s) whose frames to train on; repeatable. Default: synthetic (unless --frames-file).",
)
@click.option(
    "--root",
    "roots",
    multiple=True,
    help="Data root for the file data sets (PATH, or NAME=PATH for one of them); repeatable. "
    "Default: the VIDSHIELD_DATA environment variable.",
)
@click.option(
    "--frames-file",
    "frames_files",
    multiple=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Pre-decoded training frames (safetensors of uint8 (N,H,W,3) tensors, see --save-frames); "
    "repeatable. Needs no video decoder.",
)
@click.option(
    "--val-frames-file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Pre-decoded held-out frames. Default: the data sets' test split, or the last "
    "10% of the --frames-file frames.",
)
@click.option(
    "--save-frames",
    type=click.Path(path_type=Path),
    default=None,
    help="Write the decoded pools to SAVE-train.safetensors and SAVE-val.safetensors (with --steps 0: only that).",
)
@click.option(
    "--clips",
    type=click.IntRange(min=1),
    default=500,
    show_default=True,
    help="Clips decoded per data set for training (spread over the whole set).",
)
@click.option(
    "--val-clips",
    type=click.IntRange(min=1),
    default=50,
    show_default=True,
    help="Clips per data set from the test split for validation.",
)
@click.option("--frames", type=click.IntRange(min=1), default=16, show_default=True, help="Frames per clip.")
@click.option(
    "--size",
    default="112x112",
    show_default=True,
    help="Frame size HxW the clips are resized to, or 'native' to keep each video's own size "
    "(file data sets; frames of each size form one pool).",
)
@click.option("--steps", type=click.IntRange(min=0), default=20000, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True, help="Crops per step.")
@click.option(
    "--crop", type=click.IntRange(min=4), default=32, show_default=True, help="Training crop side (paper: 32)."
)
@click.option(
    "--lr", type=click.FloatRange(min=0, min_open=True), default=1e-3, show_default=True, help="Adam learning rate."
)
@click.option(
    "--sigma",
    type=click.FloatRange(min=0),
    default=20.0,
    show_default=True,
    help="Std of the training noise before the sigmoid (paper: 20).",
)
@click.option(
    "--code-weight",
    type=click.FloatRange(min=0),
    default=1e-4,
    show_default=True,
    help="Weight lambda of mean(code^2) in the loss (paper: 1e-4).",
)
@click.option(
    "--init",
    default=None,
    help="Start from these ComDefend weights (a path or a zoo name such as comdefend): fine-tuning. "
    "Default: random weights from --seed.",
)
@click.option(
    "--val-every",
    type=click.IntRange(min=1),
    default=500,
    show_default=True,
    help="Validate and checkpoint every N steps.",
)
@click.option(
    "--val-crops", type=click.IntRange(min=1), default=256, show_default=True, help="Held-out crops for validation."
)
@click.option(
    "--val-crop",
    type=click.IntRange(min=4),
    default=64,
    show_default=True,
    help="Side of the held-out validation crops (capped at the smallest held-out frame side).",
)
@click.option("--amp/--no-amp", default=None, help="bf16 autocast. Default: on CUDA and on CPUs with native bf16.")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Checkpoint stem: OUT.safetensors + OUT.json (best), OUT-last.* (resumable). Required unless --steps 0.",
)
@resume_option
@device_option
@seed_option
@json_option
@click.pass_context
def command(
    ctx,
    datasets,
    roots,
    frames_files,
    val_frames_file,
    save_frames,
    clips,
    val_clips,
    frames,
    size,
    steps,
    batch_size,
    crop,
    lr,
    sigma,
    code_weight,
    init,
    val_every,
    val_crops,
    val_crop,
    amp,
    out,
    resume,
    device,
    seed,
    as_json,
):
    """Train the ComDefend spatial defense (ComCNN + RecCNN) on random 32x32 crops of video frames.

    The paper trained on CIFAR-10, which is not available offline; this trains on frames of the
    named video data sets instead (recorded in the checkpoint's JSON). Validation purifies
    held-out crops with binarised codes and reports PSNR; OUT keeps the best weights.

    \b
    Examples:
      vidshield train-comdefend --steps 2000 --out runs/comdefend            # synthetic frames
      vidshield train-comdefend --dataset ut-interaction --dataset synthetic \\
          --root ../shared/data/ut-interaction --out runs/comdefend
      vidshield train-comdefend --dataset ut-interaction --root data/ut --save-frames frames/cd --steps 0
      vidshield train-comdefend --dataset ut-interaction --root data/ut --size native --crop 128 \
          --init comdefend --lr 1e-4 --out runs/comdefend-real   # fine-tune on full-size frames
      vidshield train-comdefend --frames-file frames/cd-train.safetensors \\
          --val-frames-file frames/cd-val.safetensors --device cuda --out runs/comdefend   # no PyAV needed
      vidshield train-comdefend --frames-file frames/cd-train.safetensors \
          --val-frames-file frames/cd-val.safetensors --out runs/comdefend --steps 40000 --resume
                                        # continue after an interruption, or extend (same data options)
      torchrun --nproc-per-node 2 -m vidshield train-comdefend --frames-file frames/cd-train.safetensors \
          --batch-size 256 --out runs/comdefend  # 2 GPUs (NCCL) or CPU processes (gloo); 256 = global batch

    Under torchrun, --batch-size is the global batch split over the processes (the run equals one
    process with that batch); rank 0 validates and writes the checkpoints, which resume on any
    number of processes.
    """
    from vidshield import ddp
    from vidshield.defenses.spatial.training import FrameCropSampler, train_comdefend

    if out is None and steps > 0:
        raise click.UsageError("--out is required to train (use --steps 0 with --save-frames to only decode frames)")
    if frames_files and datasets:
        raise click.UsageError("give either --dataset or --frames-file, not both")
    if resume and out is None:
        raise click.UsageError("--resume needs --out")
    size_hw = _parse_size(size)
    if size_hw is None and "synthetic" in (datasets or ("synthetic",)) and not frames_files:
        raise click.BadParameter("the synthetic data set has no native size; give HxW", param_hint="--size")
    dev = ddp.init_from_env(device) or resolve_device(device)
    ctx.call_on_close(ddp.close)
    if dev.type == "cuda":
        import torch

        torch.backends.cudnn.benchmark = True  # fixed crop shapes: let cuDNN pick the fastest kernels
    seed_everything(seed)
    progress = not as_json

    if frames_files:
        train_pool = FrameCropSampler(
            [p for f in frames_files for p in FrameCropSampler.load(f, crop=crop).pools], crop=crop
        )
        data = [{"frames_file": str(f)} for f in frames_files]
        val_pool = None
    else:
        datasets = datasets or ("synthetic",)
        root_map = _roots(roots, datasets)
        train_pool, data = _pool(
            datasets, root_map, split="train", clips=clips, frames=frames, size=size_hw, seed=seed, progress=progress
        )
        val_pool, val_data = _pool(
            datasets, root_map, split="test", clips=val_clips, frames=frames, size=size_hw, seed=seed, progress=progress
        )
        data += val_data
    if val_frames_file is not None:
        val_pool = FrameCropSampler.load(val_frames_file, crop=crop)
        data.append({"val_frames_file": str(val_frames_file)})
    if save_frames is not None:
        if val_pool is None:
            train_pool, val_pool = train_pool.split(0.1)
        if ddp.world().is_main:
            written = [
                str(train_pool.save(f"{save_frames}-train.safetensors")),
                str(val_pool.save(f"{save_frames}-val.safetensors")),
            ]
            if not as_json:
                click.echo(f"frames written: {', '.join(written)}")
    if steps == 0:
        if as_json:
            echo_json({"train_frames": train_pool.num_frames, "val_frames": val_pool.num_frames if val_pool else 0})
        return 0
    if crop > train_pool.max_crop:
        raise click.BadParameter(
            f"{crop} is larger than the smallest frame side {train_pool.max_crop}", param_hint="--crop"
        )

    result = train_comdefend(
        train_pool,
        val_source=val_pool,
        steps=steps,
        batch_size=batch_size,
        crop=crop,
        lr=lr,
        sigma=sigma,
        code_weight=code_weight,
        init=init,
        device=dev,
        out=out,
        resume=resume,
        seed=seed,
        amp=amp,
        val_every=val_every,
        val_crops=val_crops,
        val_crop=val_crop,
        metadata={"data": data, "command": command_line(ctx)},
        progress=progress,
    )
    if not ddp.world().is_main:
        return 0
    summary = {
        "weights": str(result.weights_path),
        "step": result.step,
        "best_val_psnr_db": result.best_psnr_db,
        "last": result.history[-1] if result.history else None,
    }
    if as_json:
        echo_json(summary)
    else:
        click.echo(f"best weights: {summary['weights']} (validation PSNR {result.best_psnr_db:.2f} dB, binarised code)")
    return 0

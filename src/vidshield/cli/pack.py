"""``vidshield pack``: decode a data set split once into a clip-set file."""

from __future__ import annotations

from pathlib import Path

import click

from vidshield.cli.options import echo_json, json_option, seed_option
from vidshield.utils import progress_bar


@click.command("pack")
@click.option("--dataset", type=click.Choice(["synthetic", "ut-interaction", "ucf101", "folder"]), required=True)
@click.option("--root", type=click.Path(path_type=Path), default=None, help="Data root (not for synthetic).")
@click.option(
    "--split",
    type=click.Choice(["train", "test"]),
    multiple=True,
    default=("train", "test"),
    show_default=True,
    help="Splits to pack (repeatable).",
)
@click.option(
    "--frames",
    type=click.IntRange(min=1),
    default=32,
    show_default=True,
    help="Frames per stored clip (sampled uniformly; training later draws fewer from them).",
)
@click.option(
    "--size",
    type=(int, int),
    default=(72, 72),
    show_default=True,
    help="Stored H W (short side scaled, centre crop); training later crops the model's size.",
)
@click.option("--num-videos", type=click.IntRange(min=1), default=None, help="Synthetic only: clips per split.")
@seed_option
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder for <split>.safetensors (use with --dataset clips --root OUT).",
)
@json_option
def command(dataset, root, split, frames, size, num_videos, seed, out, as_json):
    """Decode a data set once into clip-set files OUT/<split>.safetensors.

    Training from a clip set (`vidshield train --dataset clips --root OUT`) decodes nothing, so
    it is fast and runs where PyAV is not installed (e.g. a bare GPU machine).

    \b
    Examples:
      vidshield pack --dataset ut-interaction --frames 32 --size 72 72 --out packs/ut
      vidshield train --model lrcn-small --dataset clips --root packs/ut --out runs/ut-lrcn
    """
    from vidshield.data import make_dataset, pack_dataset

    written = {}
    with progress_bar(disable=as_json) as progress:
        for s in split:
            options = {"num_videos": num_videos} if dataset == "synthetic" and num_videos else {}
            ds = make_dataset(dataset, root=root, split=s, frames=frames, size=size, seed=seed, **options)
            path = pack_dataset(
                ds,
                out / f"{s}.safetensors",
                progress=progress,
                metadata={"dataset": dataset, "split": s, "frames": frames, "size": list(size)},
            )
            written[s] = {"path": str(path), "clips": len(ds), "bytes": path.stat().st_size}
    if as_json:
        echo_json(written)
    else:
        for s, w in written.items():
            click.echo(f"{s}: {w['clips']} clips -> {w['path']} ({w['bytes'] / 2**20:.1f} MiB)")
    return 0

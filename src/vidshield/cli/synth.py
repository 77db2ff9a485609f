"""``vidshield synth``: export the synthetic action data set as lossless video files."""

from __future__ import annotations

from pathlib import Path

import click

from vidshield.cli.options import echo_json, json_option, seed_option
from vidshield.utils import progress_bar


@click.command("synth")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="Output folder.")
@click.option("--num-videos", type=click.IntRange(min=1), default=100, show_default=True, help="Clips per split.")
@click.option("--frames", type=click.IntRange(min=1), default=16, show_default=True, help="Frames per clip (T).")
@click.option(
    "--size",
    nargs=2,
    type=click.IntRange(min=16),
    default=(112, 112),
    show_default=True,
    metavar="H W",
    help="Frame height and width.",
)
@click.option(
    "--classes",
    "num_classes",
    type=click.IntRange(1, 100),
    default=10,
    show_default=True,
    help="Number of classes K (the first 10 differ in appearance and motion).",
)
@click.option(
    "--split",
    "splits",
    multiple=True,
    default=("train", "test"),
    show_default=True,
    type=click.Choice(["train", "val", "test"]),
    help="Splits to write (repeat the option).",
)
@click.option("--flat", is_flag=True, help="Write OUT/<class>/ from --seed itself instead of one tree per split.")
@click.option("--fps", type=click.FloatRange(min=1, max=1000), default=25.0, show_default=True)
@seed_option
@json_option
def command(out, num_videos, frames, size, num_classes, splits, flat, fps, seed, as_json):
    """Write synthetic action clips as lossless FFV1 .mkv files, one folder per class:
    OUT/<split>/<class>/<split>_NNNNNN.mkv. Each split holds the same clips that
    `make_dataset("synthetic", split=..., seed=SEED)` generates, so OUT/<split> loads with the
    "folder" data set. Existing files are kept: rerun the command to finish an interrupted export.

    \b
    Examples:
      vidshield synth --out data/synth --num-videos 200
      vidshield synth --out data/synth-k20 --num-videos 400 --classes 20 --frames 40 --size 112 112
      vidshield synth --out data/one-tree --num-videos 50 --flat --seed 3
    """
    from vidshield.data.synthetic import export_synthetic

    chosen = None if flat else tuple(dict.fromkeys(splits))
    total = num_videos * (1 if flat else len(chosen))
    with progress_bar(disable=as_json) as progress:
        task = progress.add_task("synth", total=total)
        written = export_synthetic(
            out,
            num_videos=num_videos,
            splits=chosen,
            seed=seed,
            num_classes=num_classes,
            frames=frames,
            height=size[0],
            width=size[1],
            fps=fps,
            progress=lambda n: progress.advance(task, n),
        )
    summary = {
        "out": str(out),
        "splits": {split or ".": len(paths) for split, paths in written.items()},
        "num_classes": num_classes,
        "frames": frames,
        "size": list(size),
        "seed": seed,
    }
    if as_json:
        echo_json(summary)
    else:
        parts = ", ".join(f"{n} {s if s != '.' else 'clips'}" for s, n in summary["splits"].items())
        click.echo(f"wrote {parts} ({num_classes} classes, {frames}x{size[0]}x{size[1]}) to {out}")
    return 0

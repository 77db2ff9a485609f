"""``vidshield info``: probe video files (size, fps, frame count, duration, codec)."""

from __future__ import annotations

import click

from vidshield.cli.options import echo_json, json_option


@click.command("info")
@click.argument("videos", nargs=-1, required=True, type=click.Path(dir_okay=True))
@click.option("--exact", is_flag=True, help="Count frames by decoding them all (slow; exact even for damaged files).")
@json_option
def command(videos, exact, as_json):
    """Probe each VIDEO and print its size, frame rate, frame count, duration, codec, pixel format
    and whether it has audio. An unreadable file stops with a one-line error naming it.

    \b
    Examples:
      vidshield info clip.mp4
      vidshield info a.mkv b.avi --json
      vidshield info damaged.mkv --exact
    """
    from vidshield.io import probe

    infos = [probe(path, exact=exact) for path in videos]
    if as_json:
        echo_json([info.to_dict() for info in infos])
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title="videos")
    for col in ("file", "size", "fps", "frames", "duration", "codec", "pix_fmt", "audio"):
        table.add_column(
            col,
            justify="right" if col in ("fps", "frames", "duration") else "left",
            overflow="fold" if col == "file" else "ellipsis",
        )
    for info in infos:
        table.add_row(
            info.path,
            f"{info.width}x{info.height}",
            f"{info.fps:.3f}",
            str(info.num_frames),
            f"{info.duration:.3f} s",
            info.codec,
            info.pix_fmt,
            "yes" if info.has_audio else "no",
        )
    Console().print(table)
    return 0

"""``vidshield defend``: purify a video file at its own resolution: detect and route (``auto``), or
one defense of the registry on the whole video (:func:`vidshield.pipeline.defend_file`)."""

from __future__ import annotations

import time
from pathlib import Path

import click

from vidshield.cli.options import (
    DEFAULT_MODEL,
    comdefend_option,
    config_option,
    device_option,
    echo_json,
    json_option,
    polluted_option,
    qp_option,
    resolve_device,
)
from vidshield.names import DEFENSE_NAMES
from vidshield.text import printable
from vidshield.utils import progress_bar


def _parse_frames(text: str) -> list[int]:
    try:
        frames = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError as e:
        raise click.BadParameter(
            f"expected comma-separated frame indices like 3,7,12; got {text!r}", param_hint="--frames"
        ) from e
    if not frames or frames[0] < 0:
        raise click.BadParameter("frame indices must be >= 0", param_hint="--frames")
    return frames


@click.command("defend")
@click.argument("video", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Output file (.mkv: lossless FFV1).",
)
@click.option(
    "--method",
    type=click.Choice(["auto", *DEFENSE_NAMES]),
    default="auto",
    show_default=True,
    help="auto: detect, then route each clip to the temporal or spatial defense (the paper's framework); "
    "any other: that defense on the whole video (jpeg, median, bitdepth: the registry's settings).",
)
@click.option(
    "--model", "model_ref", default=DEFAULT_MODEL, show_default=True, help="auto: the detection network (CNN+LSTM)."
)
@config_option
@comdefend_option
@polluted_option
@click.option(
    "--frames", "frames_text", default=None, help="Temporal: comma-separated polluted frame indices, e.g. 3,7."
)
@click.option(
    "--every",
    type=click.IntRange(min=1),
    default=None,
    help="Temporal: rebuild every frame but the key frames 0, K, 2K, ...",
)
@qp_option
@click.option(
    "--block", type=click.IntRange(min=1, max=128), default=8, show_default=True, help="Temporal: block size."
)
@click.option("--search", type=click.IntRange(min=0), default=7, show_default=True, help="Temporal: search range.")
@click.option(
    "--search-method",
    type=click.Choice(["full", "tss", "ntss", "diamond", "hexagon"]),
    default="full",
    show_default=True,
    help="Temporal: block-matching search.",
)
@click.option(
    "--transform", type=click.Choice(["4", "8"]), default="4", show_default=True, help="Temporal: integer-DCT size."
)
@click.option("--crf", type=click.IntRange(0, 51), default=28, show_default=True, help="H.264: constant rate factor.")
@click.option(
    "--model-view",
    is_flag=True,
    help="auto: write the video defended at the detection network's view (fast; what `scan --defended` writes) "
    "instead of the file's own resolution.",
)
@click.option(
    "--yes",
    "assume_yes",
    is_flag=True,
    help="Go ahead when the spatial defense is estimated to take more than 3 minutes (without it, defend stops "
    "before the work, prints the estimate and the faster options: --model-view, --device cuda).",
)
@click.option(
    "--compare",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write a PNG of up to 4 frames before and after the defense and their difference x 8 "
    "(the rebuilt frames when the temporal defense ran, else frames spread over the video).",
)
@click.option(
    "--strict",
    is_flag=True,
    help="Refuse a truncated file instead of defending the frames that decode.",
)
@device_option
@json_option
def command(
    video,
    output,
    method,
    model_ref,
    config,
    comdefend,
    polluted,
    frames_text,
    every,
    qp,
    block,
    search,
    search_method,
    transform,
    crf,
    model_view,
    assume_yes,
    compare,
    strict,
    device,
    as_json,
):
    """Purify VIDEO and write the result to OUTPUT (-o; .mkv: lossless FFV1).

    auto detects at the detection network's view, routes each window (clean: unchanged, sparse:
    the temporal defense on its polluted frames, dense: ComDefend on every frame) and defends the
    video at its own resolution; --method NAME applies one defense to the whole video instead
    (temporal needs --frames or --every).

    \b
    Examples:
      vidshield defend clip.mp4 -o clean.mkv                      # detect, route, defend
      vidshield defend clip.mp4 -o clean.mkv --method temporal --frames 3,7 --qp 36
      vidshield defend clip.mp4 -o clean.mkv --method temporal --every 8 --search-method diamond
      vidshield defend clip.mp4 -o clean.mkv --method spatial
      vidshield defend clip.mp4 -o clean.mkv --method h264 --crf 28 --json
      vidshield defend big.mp4 -o clean.mkv --model-view           # at the model's view, in seconds

    Frames are written as they are defended (memory: a run of frames, not the video). When the
    spatial defense (ComDefend) at full resolution is estimated to take more than 3 minutes, defend
    stops before the work and says how long it would take; --yes goes ahead (the estimate is printed).
    """
    from vidshield.defenses import defense_defaults
    from vidshield.defenses.spatial.comdefend import REAL_FOOTAGE_WEIGHTS
    from vidshield.io import probe
    from vidshield.io.write import check_video_output
    from vidshield.pipeline import (
        SLOW_SPATIAL_SECONDS,
        build_pipeline,
        comparison_frames,
        defend_file,
        read_frame_pairs,
    )
    from vidshield.plotting import plot_before_after
    from vidshield.utils import check_writable

    if method == "temporal" and (frames_text is None) == (every is None):
        raise click.UsageError("--method temporal needs exactly one of --frames, --every (or use --method auto)")
    if model_view and method != "auto":
        raise click.UsageError("--model-view goes with --method auto (the detection network's view)")
    # what can fail at the end is checked before the work: the output's format, folder and frame rate
    if compare is not None:
        check_writable(compare)
    info = probe(video, strict=strict)
    if info.truncated:
        click.echo(
            printable(f"{video}: warning: the file is truncated; defending the {info.num_frames} frames it holds "
                      f"(--strict refuses such files)"),
            err=True,
        )  # fmt: skip
    check_video_output(output, fps=float(info.fps or 25.0))
    frames = _parse_frames(frames_text) if frames_text else None
    temporal = dict(qp=qp, block=block, search=search, method=search_method, transform=int(transform))
    if method == "spatial" and comdefend is None:  # a user's file is real footage
        comdefend = REAL_FOOTAGE_WEIGHTS
    given = {"temporal": temporal, "spatial": {"weights": comdefend}, "h264": {"crf": crf}}.get(method, {})
    dev = resolve_device(device)
    pipeline = None
    if method == "auto":
        pipeline = build_pipeline(  # no vote: it changes only the answer, which defend does not report
            model=model_ref,
            config=config,
            comdefend=comdefend,
            temporal=temporal,
            polluted=polluted,
            vote=False,
            device=dev,
        )

    def announce(seconds: float) -> None:
        if seconds > 60:
            click.echo(f"spatial defense: about {seconds / 60:.0f} min on the {dev.type}", err=True)

    start = time.perf_counter()
    with progress_bar(disable=as_json) as progress:
        result = defend_file(
            video,
            method,
            output=output,
            settings=given,
            pipeline=pipeline,
            frames=frames,
            every=every,
            device=dev,
            progress=progress,
            model_view=model_view,
            max_spatial_seconds=None if assume_yes else SLOW_SPATIAL_SECONDS,
            on_estimate=announce,
        )
    elapsed = time.perf_counter() - start
    shown = {k: v for k, v in temporal.items() if k != "method"} | {"search_method": search_method}
    if method == "auto":
        settings = {**shown, "model": model_ref, "config": config, "polluted": polluted}
        settings["comdefend"] = pipeline.spatial.weights
        settings |= {"verdict": result.verdict, "spatial_frames": result.spatial_frames, "model_view": model_view}
    elif method == "temporal":
        settings = {"frames": frames, "every": every, **shown}
    elif method == "spatial":
        settings = {"comdefend": comdefend}
    else:
        settings = {**defense_defaults(method), **given}
    summary = {
        "input": str(video),
        "output": str(output),
        "method": method,
        "frames": result.num_frames,
        "size": list(result.size),
        "polluted_frames": result.temporal_frames,
        "seconds": round(elapsed, 3),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in settings.items() if v is not None},
    }
    if compare is not None:
        frames_shown = comparison_frames(result)
        plot_before_after(
            read_frame_pairs(video, output, frames_shown), compare, title=f"{video.name} -> {output.name} ({method})"
        )
        summary["compare"] = {"path": str(compare), "frames": frames_shown}
    if as_json:
        echo_json(summary)
    else:
        verdict = f" (verdict {result.verdict})" if result.verdict else ""
        click.echo(
            f"{method}{verdict}: {summary['frames']} frames, {len(result.temporal_frames)} rebuilt temporally, "
            f"{result.spatial_frames} purified spatially -> {printable(output)} in {elapsed:.2f}s"
        )
    return 0

"""``vidshield defend``: purify a video file with the temporal defense or the H.264 baseline."""

from __future__ import annotations

import time
from pathlib import Path

import click
import numpy as np
import torch
from rich.progress import Progress

from vidshield.cli.options import device_option, echo_json, json_option, resolve_device
from vidshield.pipeline import POLLUTED_RULES
from vidshield.text import printable


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


def _temporal(path, opts, device, progress):
    """Stream the file through defend_stream; returns (uint8 frames, fps, polluted indices)."""
    from vidshield.defenses.temporal import defend_stream
    from vidshield.io import iter_chunks, probe

    info = probe(path)
    defense = _temporal_defense(opts)
    wanted = set(opts["frames"] or [])
    every = opts["every"]

    def is_polluted(i: int) -> bool:
        return i in wanted if wanted else i % every != 0

    def frames():
        for _, chunk in iter_chunks(path, chunk_frames=32):
            yield from chunk.to(device).unbind(0)

    task = progress.add_task("defending", total=info.num_frames or None)
    out = []
    for frame in defend_stream(frames(), is_polluted, defense):
        out.append(frame.mul(255).round_().clamp_(0, 255).to(torch.uint8).permute(1, 2, 0).cpu().numpy())
        progress.advance(task)
    total = len(out)
    if wanted and max(wanted) >= total:
        raise click.BadParameter(f"frame {max(wanted)} is beyond the last frame ({total - 1})", param_hint="--frames")
    polluted = sorted(i for i in range(total) if is_polluted(i))
    return np.stack(out), info.fps, polluted


def _h264(path, opts, device, progress):
    from vidshield.defenses.h264 import h264_roundtrip
    from vidshield.io import probe, read_video

    info = probe(path)
    task = progress.add_task("re-encoding", total=1)
    video = read_video(path)
    out = h264_roundtrip(video, crf=opts["crf"], fps=max(1, round(info.fps or 25)))
    progress.advance(task)
    return out.mul(255).round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy(), info.fps, []


def _spatial(path, opts, device, progress):
    from vidshield.defenses.spatial import SpatialDefense
    from vidshield.io import probe
    from vidshield.pipeline import defend_frames_full_resolution

    info = probe(path)
    spatial = SpatialDefense(weights=opts["comdefend"]).to(device)
    everything = set(range(info.num_frames))
    frames = defend_frames_full_resolution(
        path, set(), everything, temporal=None, spatial=spatial, device=device, progress=progress
    )
    return _to_uint8(frames), info.fps, []


def _auto(path, opts, device, progress):
    """Detect at the model's view, then defend the video at its own resolution as routed."""
    from vidshield.cli.scan import build_pipeline
    from vidshield.io import probe
    from vidshield.pipeline import defend_frames_full_resolution, full_resolution_plan, scan_file

    pipe = build_pipeline(opts["model"], None, opts["config"], opts["comdefend"], opts["qp"], opts["polluted"], device)
    pipe.temporal = _temporal_defense(opts)
    scan = scan_file(pipe, path, progress=progress)
    temporal_frames, spatial_frames = full_resolution_plan(scan)
    frames = defend_frames_full_resolution(
        path,
        temporal_frames,
        spatial_frames,
        temporal=pipe.temporal,
        spatial=pipe.spatial,
        device=device,
        progress=progress,
    )
    opts["verdict"] = scan.verdict
    opts["spatial_frames"] = len(spatial_frames)
    return _to_uint8(frames), probe(path).fps, sorted(temporal_frames)


def _to_uint8(frames) -> np.ndarray:
    return np.stack([f.mul(255).round_().clamp_(0, 255).to(torch.uint8).permute(1, 2, 0).cpu().numpy() for f in frames])


def _temporal_defense(opts):
    from vidshield.defenses.temporal import TemporalDefense

    return TemporalDefense(
        block=opts["block"],
        search=opts["search"],
        method=opts["search_method"],
        qp=opts["qp"],
        transform=opts["transform"],
    )


_TEMPORAL = ("frames", "every", "qp", "block", "search", "search_method", "transform")
# which options each method uses (for the JSON summary)
_SETTINGS = {
    "auto": _TEMPORAL + ("model", "config", "comdefend", "polluted", "verdict", "spatial_frames"),
    "temporal": _TEMPORAL,
    "spatial": ("comdefend",),
    "h264": ("crf",),
}

# --method name -> runner(path, options, device, progress) -> (uint8 (T, H, W, 3), fps, polluted frames)
METHODS = {"auto": _auto, "temporal": _temporal, "spatial": _spatial, "h264": _h264}


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
    type=click.Choice(sorted(METHODS)),
    default="auto",
    show_default=True,
    help="auto: detect, then route each clip to the temporal or spatial defense (the paper's framework); "
    "temporal / spatial / h264: one defense on the whole video.",
)
@click.option(
    "--model", "model_ref", default="synthetic-lrcn", show_default=True, help="auto: the detection network (CNN+LSTM)."
)
@click.option(
    "--config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="auto: detector config from `vidshield calibrate`.",
)
@click.option("--comdefend", default="comdefend", show_default=True, help="auto / spatial: ComDefend weights.")
@click.option(
    "--polluted",
    type=click.Choice(list(POLLUTED_RULES)),
    default="exceptions",
    show_default=True,
    help="auto: frames the temporal defense rebuilds.",
)
@click.option(
    "--frames", "frames_text", default=None, help="Temporal: comma-separated polluted frame indices, e.g. 3,7."
)
@click.option(
    "--every",
    type=click.IntRange(min=1),
    default=None,
    help="Temporal: rebuild every frame but the key frames 0, K, 2K, ...",
)
@click.option(
    "--qp", type=click.IntRange(0, 51), default=36, show_default=True, help="Temporal: residual QP (strength)."
)
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
    device,
    as_json,
):
    """Purify VIDEO and write the result to OUT.

    \b
    Examples:
      vidshield defend clip.mp4 -o clean.mkv                      # detect, route, defend
      vidshield defend clip.mp4 -o clean.mkv --method temporal --frames 3,7 --qp 36
      vidshield defend clip.mp4 -o clean.mkv --method temporal --every 8 --search-method diamond
      vidshield defend clip.mp4 -o clean.mkv --method spatial
      vidshield defend clip.mp4 -o clean.mkv --method h264 --crf 28 --json
    """
    from vidshield.io import probe, write_video
    from vidshield.io.write import check_video_output

    if method == "temporal" and (frames_text is None) == (every is None):
        raise click.UsageError("--method temporal needs exactly one of --frames, --every (or use --method auto)")
    # what can fail at the end is checked before the work: the output's format, folder and frame rate
    check_video_output(output, fps=float(probe(video).fps or 25.0))
    opts = dict(
        frames=_parse_frames(frames_text) if frames_text else None,
        every=every,
        qp=qp,
        block=block,
        search=search,
        search_method=search_method,
        transform=int(transform),
        crf=crf,
        model=model_ref,
        config=config,
        comdefend=comdefend,
        polluted=polluted,
    )
    dev = resolve_device(device)
    start = time.perf_counter()
    with Progress(transient=True, disable=as_json) as progress:
        frames, fps, polluted = METHODS[method](video, opts, dev, progress)
    elapsed = time.perf_counter() - start
    write_video(output, frames, fps=float(fps or 25.0))
    summary = {
        "input": str(video),
        "output": str(output),
        "method": method,
        "frames": int(frames.shape[0]),
        "size": [int(frames.shape[1]), int(frames.shape[2])],
        "polluted_frames": polluted,
        "seconds": round(elapsed, 3),
        "settings": {
            k: (str(v) if isinstance(v, Path) else v)
            for k, v in opts.items()
            if v is not None and k in _SETTINGS[method]
        },
    }
    if as_json:
        echo_json(summary)
    else:
        verdict = f" (verdict {opts['verdict']})" if "verdict" in opts else ""
        click.echo(
            f"{method}{verdict}: {summary['frames']} frames, {len(polluted)} rebuilt temporally, "
            f"{opts.get('spatial_frames', summary['frames'] if method == 'spatial' else 0)} purified spatially "
            f"-> {printable(output)} in {elapsed:.2f}s"
        )
    return 0

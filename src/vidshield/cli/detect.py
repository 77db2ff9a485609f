"""``vidshield detect``: verdict (clean / sparse / dense), alpha and exception frames per video."""

from __future__ import annotations

from pathlib import Path

import click

from vidshield.cli.options import device_option, echo_json, json_option, resolve_device


def detector_options(f):
    """Options shared by ``detect`` and ``calibrate``: model, windows, batch size, device."""
    options = [
        click.option(
            "--model",
            "model_ref",
            default=None,
            help="Shipped model name or checkpoint path (a model with a per-frame path: lrcn*) [detect: the "
            "config's model, else ut-lrcn; a shipped model brings its shipped config].",
        ),
        click.option(
            "--window",
            type=click.IntRange(min=3),
            default=None,
            help="Frames per detection window [default: the model's input_spec.frames].",
        ),
        click.option(
            "--stride",
            type=click.IntRange(min=1),
            default=None,
            help="Frames between window starts [default: window // 2].",
        ),
        click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True),
        device_option,
    ]
    for option in reversed(options):
        f = option(f)
    return f


@click.command("detect")
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@detector_options
@click.option(
    "--config",
    type=click.Path(path_type=Path),
    default=None,
    help="Detector config (detector.json from `vidshield calibrate`): thresholds, score, model.",
)
@click.option(
    "--gamma1", type=click.FloatRange(min=0), default=None, help="Clean/sparse threshold [default: config or 0.175]."
)
@click.option(
    "--gamma2", type=click.FloatRange(min=0), default=None, help="Sparse/dense threshold [default: config or 0.3]."
)
@click.option("--score", default=None, help="Consistency score to route on [default: config or alpha].")
@click.option("--windows", "show_windows", is_flag=True, help="Also list every window (table output).")
@json_option
def command(
    source, model_ref, window, stride, batch_size, device, config, gamma1, gamma2, score, show_windows, as_json
):
    """Detect adversarial videos by the temporal consistency of per-frame labels.

    SOURCE is a video file or a folder of videos (an adversarial set with a manifest.json, or any
    folder of video files). Every frame is decoded at the model's spatial size; windows of the
    model's clip length (--window) slide over the video every --stride frames, and the most
    severe window gives the video's verdict (a clip of exactly one window, like the attacks
    write, is detected as a whole). alpha < gamma1: clean; < gamma2: sparse attack; else dense.

    \b
    Examples:
      vidshield detect clip.mkv                     # ut-lrcn, thresholds of zoo/ut-lrcn.detector.json
      vidshield detect shapes.mkv --model synthetic-lrcn
      vidshield detect runs/adv/sparse --model runs/lrcn --config runs/calib/detector.json --json
      vidshield detect long.mp4 --model synthetic-lrcn --window 16 --stride 4 --windows
    """
    from vidshield.detection import collect_videos, detect_file, load_detector

    dev = resolve_device(device)
    try:
        det = load_detector(
            model_ref, config, gamma1=gamma1, gamma2=gamma2, score=score, device=dev, batch_size=batch_size
        )
    except ValueError as e:
        raise click.BadParameter(str(e)) from e
    results = []
    for path, _ in collect_videos(source, successful_only=False):
        summary, windows = detect_file(det, path, window=window, stride=stride)
        results.append(
            {
                "file": str(path),
                "frames": summary.num_frames,
                "verdict": summary.verdict,
                "alpha": summary.alpha,
                "score": summary.score,
                "exception_frames": list(summary.exception_frames),
                "scores": dict(summary.scores),
                "windows": [w.to_dict() for w in windows],
            }
        )
    if as_json:
        echo_json({"config": det.config.to_dict(), "videos": results})
        return 0
    _print_table(results, det, show_windows)
    return 0


def _print_table(results, det, show_windows):
    from rich.console import Console
    from rich.table import Table

    colour = {"clean": "green", "sparse": "yellow", "dense": "red"}
    title = f"detection ({det.score}; gamma1 = {det.gamma1:g}, gamma2 = {det.gamma2:g})"
    table = Table(title=title)
    for col, justify in (
        ("video", "left"),
        ("frames", "right"),
        ("windows", "right"),
        ("verdict", "left"),
        ("alpha", "right"),
        ("exception frames", "left"),
    ):
        table.add_column(col, justify=justify)
    for r in results:
        exc = r["exception_frames"]
        shown = ", ".join(map(str, exc[:12])) + (f" ... (+{len(exc) - 12})" if len(exc) > 12 else "")
        table.add_row(
            Path(r["file"]).name,
            str(r["frames"]),
            str(len(r["windows"])),
            f"[{colour[r['verdict']]}]{r['verdict']}[/]",
            f"{r['alpha']:.3f}",
            shown or "-",
        )
        if show_windows and len(r["windows"]) > 1:
            for w in r["windows"]:
                table.add_row(
                    f"  frames {w['start']}-{w['start'] + len(w['frame_labels']) - 1}",
                    "",
                    "",
                    f"[{colour[w['verdict']]}]{w['verdict']}[/]",
                    f"{w['alpha']:.3f}",
                    ", ".join(str(w["start"] + e) for e in w["exception_frames"]) or "-",
                )
    Console().print(table)

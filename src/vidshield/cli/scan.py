"""``vidshield scan``: is this video attacked? Verdict, alpha, label before and after defense."""

from __future__ import annotations

import functools
import hashlib
import os
import sys
from pathlib import Path

import click

from vidshield.cli.options import echo_json, json_option, pipeline_options, resolve_device
from vidshield.text import printable
from vidshield.utils import progress_bar


def default_output(video: Path, suffix: str) -> Path:
    """``VIDEO's name + suffix`` in the current folder; a name too long for the file system keeps
    its first 180 bytes plus a hash of the whole name."""
    raw = os.fsencode(video.name)
    if len(raw) + len(suffix) <= 255:
        return Path(video.name + suffix)
    short = os.fsdecode(raw[:180])
    return Path(f"{short}-{hashlib.sha256(raw).hexdigest()[:12]}{suffix}")


@click.command("scan")
@click.argument("video", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pipeline_options
@click.option(
    "--report",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the JSON report here; - writes it to stdout (the summary lines then go to stderr) "
    "[default: VIDEO's name + .scan.json in the current folder]. An existing link, device or FIFO is refused.",
)
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the per-frame label plot here [default: VIDEO's name + .scan.png].",
)
@click.option(
    "--defended",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the defended video (model view, lossless .mkv), window by window as the scan goes.",
)
@click.option(
    "--strict",
    is_flag=True,
    help="Refuse a truncated file (data ending before what its container declares) instead of scanning "
    "the frames that decode.",
)
@json_option
def command(
    video,
    model_ref,
    classifier_ref,
    input_spec,
    allow_mismatch,
    config,
    comdefend,
    qp,
    polluted,
    squeeze_check,
    vote,
    device,
    report,
    plot,
    defended,
    strict,
    as_json,
):
    """Detect whether VIDEO was adversarially manipulated, defend it, classify it.

    The video is cut into consecutive clips of the model's length at the model's view; each clip
    is detected (alpha, exception frames), routed (clean / sparse -> temporal defense / dense ->
    spatial defense) and classified. Prints the verdict and the label before and after defense,
    writes a JSON report and a PNG of the scan: frame thumbnails along the time axis, each
    window's detection score against its thresholds with the fired windows shaded, and the
    per-frame labels with the exception frames circled.

    The default detector is ut-lrcn (6 UT-Interaction actions) with its shipped config: feature_spike
    calibrated on clean real footage for a 1 % window false-alarm budget. When the config holds an in-domain
    profile and VIDEO is far from the footage it was calibrated on (median embedding distance or
    motion above the calibrated range), the report says "in_domain": false and "verdict":
    "out_of_domain" (no verdict; "detector_verdict" keeps what the detector alone said), one
    warning line replaces the verdict, and nothing is defended.

    A truncated file (its data ends before what its container declares, as many real files do)
    is scanned on the frames that decode: the report says "truncated": true with
    "frames_decoded" and "frames_declared", and a warning goes to stderr; --strict refuses it.
    The exit status is 0 for every verdict and 2 for input that cannot be scanned.

    \b
    Examples:
      vidshield scan clip.mkv
      vidshield scan clip.mkv --json --defended clip.defended.mkv
      vidshield scan shapes.mkv --model synthetic-lrcn
      vidshield scan clip.mp4 --model ut-lrcn --classifier ut-c3d --config runs/calib/detector.json
    """

    if not as_json and sys.stderr.isatty():  # on a terminal, something at once (torch takes ~2 s to import)
        click.echo(printable(f"scanning {video} with {model_ref} ..."), err=True)
    from vidshield.utils import start_up_without_gc

    with start_up_without_gc():  # the imports (torch) and the models, without full collections over them
        from vidshield.detection.detector import shipped_config
        from vidshield.detection.plots import plot_scan_timeline
        from vidshield.io import VideoWriter, probe
        from vidshield.io.write import check_video_output
        from vidshield.pipeline import build_pipeline, scan_file, scan_report, timeline_thumbnails
        from vidshield.utils import atomic_write_json, check_writable, fewer_torch_threads

        report_to_stdout = report is not None and str(report) == "-"
        report = report or default_output(video, ".scan.json")
        plot = plot or default_output(video, ".scan.png")
        if not report_to_stdout:
            check_writable(report)
        check_writable(plot)
        writer = None
        if defended is not None:  # checked and opened first (before the work), written window by window
            fps = probe(video).fps or 25.0
            check_video_output(defended, fps=fps)
            writer = VideoWriter(defended, fps=fps)
        dev = resolve_device(device)
        shipped = shipped_config(model_ref) if config is None else None
        # On a CPU, the models load at one intra-op thread fewer than the cores, as scan_file runs them:
        # with a second thread spinning, copying the weights took 0.15 s more CPU on two shared cores.
        with fewer_torch_threads(1 if dev.type == "cpu" else 0):
            pipe = build_pipeline(
                model=model_ref,
                classifier=classifier_ref,
                config=config,
                comdefend=comdefend,
                temporal={"qp": qp},
                polluted=polluted,
                squeeze_check=squeeze_check,
                vote=vote,
                input_spec=input_spec,
                allow_mismatch=allow_mismatch,
                device=dev,
            )
    with progress_bar(disable=as_json) as progress:
        try:  # out of the calibrated domain, the verdict is not acted on (nothing defended)
            result = scan_file(
                pipe,
                video,
                progress=progress,
                on_defended=writer.write if writer else None,
                check_domain=True,
                strict=strict,
            )
        except BaseException:
            if writer is not None:
                writer.abort()
            raise
    if writer is not None:
        writer.close()
    names = pipe.classifier.class_names
    used = config if config is not None else shipped
    summary = scan_report(
        pipe,
        result,
        video=str(video),
        model=model_ref,
        classifier=classifier_ref,
        config=None if used is None else str(used),
        domain=result.domain,
    )
    summary["report"], summary["plot"] = "-" if report_to_stdout else str(report), str(plot)
    plot_scan_timeline(summary, plot, thumbnails=timeline_thumbnails(video, result.num_frames), class_names=names)
    if writer is not None:
        summary["defended"] = str(defended)
    if not report_to_stdout:
        atomic_write_json(report, summary)
    if result.truncated:
        click.echo(
            printable(
                f"{video}: warning: the file is truncated; scanned the {result.num_frames} frames that decode"
                + (f" of the {result.frames_declared} its container declares" if result.frames_declared else "")
                + " (--strict refuses such files)"
            ),
            err=True,
        )
    if as_json or report_to_stdout:
        echo_json(summary)
    if as_json:
        return 0
    _print_summary(video, pipe, result, summary, model_ref, report, plot, err=report_to_stdout)
    return 0


def _print_summary(video, pipe, result, summary: dict, model_ref: str, report, plot, *, err: bool) -> None:
    """The human-readable lines of a scan (to stderr with ``err``)."""
    domain = result.domain
    echo = functools.partial(click.echo, err=err)
    alpha = max(r.alpha for _, r in result.windows)
    detail = (
        f"max alpha {alpha:.3f} over {len(result.windows)} window(s); "
        f"on {pipe.detector.score}: gamma1 {pipe.detector.gamma1:.4g}, gamma2 {pipe.detector.gamma2:.4g}"
    )
    if domain is not None and not domain["in_domain"]:
        echo(
            printable(
                f"{video}: OUT OF DOMAIN: {summary['domain_warning']} (the detector alone would say {result.verdict}; "
                f"{detail})"
            )
        )
    else:
        echo(f"{printable(video)}: {result.verdict.upper()} ({detail})")
    declared = f" of {result.frames_declared} declared" if result.frames_declared is not None else ""
    echo(f"  frames decoded: {result.num_frames}{declared}")
    for warning in summary["warnings"]:
        echo(f"  warning: {warning}")
    if result.windows_allowed is not None:
        echo(
            f"  windows fired: {result.windows_fired} of {len(result.windows)} "
            f"(a clean video of this length may fire {result.windows_allowed} at a window FPR of "
            f"{pipe.detector.config.target_fpr:g})"
        )
    echo(f"  exception frames: {result.exception_frames() or 'none'}")
    echo(f"  defenses: {', '.join(sorted({r.defense for _, r in result.windows}))}")
    before = printable(summary["class_before"])
    after = printable(summary["class"])
    voted = " (per-frame vote)" if pipe.vote else ""
    echo(f"  label before defense: {before}   after: {after}{voted}")
    echo(printable(f"  {summary['about']}"))
    echo(printable(f"  detector: {model_ref}, thresholds from {summary['config'] or 'the paper (0.175 / 0.3)'}"))
    echo(f"  report: {printable(summary['report'])}   plot: {printable(plot)}")

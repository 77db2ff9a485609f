"""``vidshield scan``: is this video attacked? Verdict, alpha, label before and after defense."""

from __future__ import annotations

from pathlib import Path

import click

from vidshield.cli.options import device_option, echo_json, json_option, resolve_device
from vidshield.pipeline import POLLUTED_RULES


def build_pipeline(model_ref, classifier_ref, config, comdefend, qp, polluted, device, squeeze_check=False):
    """The detect -> route -> defend -> classify pipeline from command-line options."""
    from vidshield.cli.detect import load_detector
    from vidshield.defenses.spatial import SpatialDefense
    from vidshield.defenses.temporal import TemporalDefense
    from vidshield.models import load_model
    from vidshield.pipeline import DefensePipeline

    detector = load_detector(model_ref, config, None, None, None, device, batch_size=1)
    classifier = detector.model if classifier_ref is None else load_model(classifier_ref, device=device)
    spec, cspec = detector.model.input_spec, classifier.input_spec
    if (spec.frames, spec.height, spec.width) != (cspec.frames, cspec.height, cspec.width):
        raise click.BadParameter(
            f"the classifier expects {cspec.frames}x{cspec.height}x{cspec.width} clips but the detector "
            f"{spec.frames}x{spec.height}x{spec.width}; pick models trained on the same input size",
            param_hint="--classifier",
        )
    return DefensePipeline(
        classifier,
        detector,
        temporal=TemporalDefense(qp=qp),
        spatial=SpatialDefense(weights=comdefend).to(device),
        polluted=polluted,
        squeeze_check=squeeze_check,
    )


def pipeline_options(f):
    options = [
        click.option(
            "--model",
            "model_ref",
            default="synthetic-lrcn",
            show_default=True,
            help="Detection network: a CNN+LSTM, shipped name or checkpoint.",
        ),
        click.option(
            "--classifier",
            "classifier_ref",
            default=None,
            help="Classifier to protect [default: the detection network itself, one CNN pass].",
        ),
        click.option(
            "--config",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            default=None,
            help="Detector config from `vidshield calibrate` (thresholds).",
        ),
        click.option("--comdefend", default="comdefend", show_default=True, help="ComDefend weights."),
        click.option("--qp", type=click.IntRange(0, 51), default=36, show_default=True, help="Temporal defense QP."),
        click.option(
            "--polluted",
            type=click.Choice(list(POLLUTED_RULES)),
            default="exceptions",
            show_default=True,
            help="Frames the temporal defense rebuilds: the paper's exception "
            "frames, every frame off the clip's majority label, or the exception frames plus "
            "the end frames when they disagree with two agreeing neighbours.",
        ),
        click.option(
            "--squeeze-check",
            is_flag=True,
            help="Beyond the paper: also purify videos detected clean; a label change under the spatial "
            "defense marks them as attacked (catches universal perturbations that alpha misses).",
        ),
        device_option,
    ]
    for option in reversed(options):
        f = option(f)
    return f


@click.command("scan")
@click.argument("video", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pipeline_options
@click.option(
    "--report",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the JSON report here [default: VIDEO's name + .scan.json in the current folder].",
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
    help="Also write the defended video (model view, lossless .mkv).",
)
@json_option
def command(
    video,
    model_ref,
    classifier_ref,
    config,
    comdefend,
    qp,
    polluted,
    squeeze_check,
    device,
    report,
    plot,
    defended,
    as_json,
):
    """Detect whether VIDEO was adversarially manipulated, defend it, classify it.

    The video is cut into consecutive clips of the model's length at the model's view; each clip
    is detected (alpha, exception frames), routed (clean / sparse -> temporal defense / dense ->
    spatial defense) and classified. Prints the verdict and the label before and after defense,
    writes a JSON report and a PNG of the per-frame labels with exception frames circled.

    \b
    Examples:
      vidshield scan clip.mkv
      vidshield scan clip.mkv --json --defended clip.defended.mkv
      vidshield scan clip.mp4 --model ut-lrcn --classifier ut-c3d --config runs/calib/detector.json
    """
    from rich.progress import Progress

    from vidshield.detection.plots import plot_label_strips
    from vidshield.io import write_video
    from vidshield.pipeline import scan_file, scan_report
    from vidshield.utils import atomic_write_json

    dev = resolve_device(device)
    pipe = build_pipeline(model_ref, classifier_ref, config, comdefend, qp, polluted, dev, squeeze_check)
    with Progress(transient=True, disable=as_json) as progress:
        result = scan_file(pipe, video, progress=progress)
    names = pipe.classifier.class_names
    summary = scan_report(pipe, result, video=str(video), model=model_ref, classifier=classifier_ref)
    report = report or Path(video.name + ".scan.json")
    plot = plot or Path(video.name + ".scan.png")
    summary["report"], summary["plot"] = str(report), str(plot)
    labels = result.frame_labels()
    if len(labels) >= 3:
        plot_label_strips([(f"{video.name}: {result.verdict}", labels)], plot, class_names=names)
    if defended is not None:
        frames = list(result.defended_frames())
        import torch

        from vidshield.io import probe

        write_video(defended, torch.stack(frames), fps=probe(video).fps or 25.0)
        summary["defended"] = str(defended)
    atomic_write_json(report, summary)
    if as_json:
        echo_json(summary)
        return 0
    alpha = max(r.alpha for _, r in result.windows)
    click.echo(
        f"{video}: {result.verdict.upper()} (max alpha {alpha:.3f} over {len(result.windows)} window(s); "
        f"gamma1 {pipe.detector.gamma1}, gamma2 {pipe.detector.gamma2})"
    )
    click.echo(f"  exception frames: {result.exception_frames() or 'none'}")
    click.echo(f"  defenses: {', '.join(sorted({r.defense for _, r in result.windows}))}")
    before = summary["class_before"]
    after = summary["class"]
    click.echo(f"  label before defense: {before}   after: {after}")
    click.echo(f"  report: {report}   plot: {plot}")
    return 0

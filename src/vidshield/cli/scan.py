"""``vidshield scan``: is this video attacked? Verdict, alpha, label before and after defense."""

from __future__ import annotations

from pathlib import Path

import click

from vidshield.cli.options import device_option, echo_json, json_option, resolve_device
from vidshield.pipeline import POLLUTED_RULES


def build_pipeline(
    model_ref,
    classifier_ref,
    config,
    comdefend,
    qp,
    polluted,
    device,
    squeeze_check=False,
    *,
    input_spec=None,
    allow_mismatch=False,
):
    """The detect -> route -> defend -> classify pipeline from command-line options. The
    classifier (a shipped name, a checkpoint or a TorchScript file with ``input_spec``) gets its
    own view of every window; a detection network trained for another classifier is refused
    unless ``allow_mismatch``. Without ``classifier_ref`` a distilled detection network brings
    the classifier it serves, any other protects itself."""
    from vidshield.cli.detect import load_detector
    from vidshield.defenses.spatial import SpatialDefense
    from vidshield.defenses.temporal import TemporalDefense
    from vidshield.detection.train_detector import check_pairing, served_classifier
    from vidshield.models.adapter import load_classifier
    from vidshield.pipeline import DefensePipeline

    detector = load_detector(model_ref, config, None, None, None, device, batch_size=1)
    served = served_classifier(detector.model)
    if classifier_ref is None and served is not None and served.get("ref"):
        classifier_ref = served["ref"]
    if classifier_ref is None:
        classifier = detector.model
    else:
        classifier = load_classifier(classifier_ref, input_spec=input_spec, device=device)
    check_pairing(detector.model, classifier, allow_mismatch=allow_mismatch)
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
            help="Classifier to protect: shipped name, checkpoint, or TorchScript .pt (with --input-spec or a JSON "
            "beside it) [default: the classifier a distilled detector serves, else the detection network itself].",
        ),
        click.option(
            "--input-spec",
            default=None,
            help="TorchScript classifier's input: a JSON file or string with layout (NCTHW|NTCHW), frames, height, "
            "width, mean, std, class_names [default: model.json beside model.pt].",
        ),
        click.option(
            "--allow-mismatch",
            is_flag=True,
            help="Pair a detection network with a classifier other than the one it was trained for.",
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
    input_spec,
    allow_mismatch,
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
    from vidshield.pipeline import scan_file
    from vidshield.utils import atomic_write_json

    dev = resolve_device(device)
    pipe = build_pipeline(
        model_ref,
        classifier_ref,
        config,
        comdefend,
        qp,
        polluted,
        dev,
        squeeze_check,
        input_spec=input_spec,
        allow_mismatch=allow_mismatch,
    )
    with Progress(transient=True, disable=as_json) as progress:
        result = scan_file(pipe, video, progress=progress)
    names = pipe.classifier.class_names
    classifier_name = getattr(pipe.classifier, "source", None) or classifier_ref or model_ref
    summary = {
        "video": str(video),
        "model": model_ref,
        "classifier": classifier_name,
        "label_space": names,
        "gamma1": pipe.detector.gamma1,
        "gamma2": pipe.detector.gamma2,
        "target_fpr": pipe.detector.config.target_fpr,
        **result.to_dict(names),
    }
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
    if result.windows_allowed is not None:
        click.echo(
            f"  windows fired: {result.windows_fired} of {len(result.windows)} "
            f"(a clean video of this length may fire {result.windows_allowed} at a window FPR of "
            f"{pipe.detector.config.target_fpr:g})"
        )
    click.echo(f"  exception frames: {result.exception_frames() or 'none'}")
    click.echo(f"  defenses: {', '.join(sorted({r.defense for _, r in result.windows}))}")
    before = summary["class_before"]
    after = summary["class"]
    click.echo(f"  label before defense: {before}   after: {after}")
    space = f"{len(names)} classes: {', '.join(names[:5])}{' ...' if len(names) > 5 else ''}" if names else "unnamed"
    click.echo(f"  classifier: {classifier_name} ({space})")
    click.echo(f"  report: {report}   plot: {plot}")
    return 0

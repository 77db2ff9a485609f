"""``vidshield train-detector``: a per-frame detection network for any classifier, by distillation."""

from __future__ import annotations

from pathlib import Path

import click

from vidshield.cli.options import (
    cache_option,
    command_line,
    dataset_options,
    device_option,
    echo_json,
    input_spec_option,
    json_option,
    require_root,
    resolve_device,
    resume_option,
    seed_option,
)
from vidshield.text import printable
from vidshield.utils import seed_everything


@click.command("train-detector")
@click.option(
    "--classifier",
    "classifier_ref",
    required=True,
    help="The classifier to serve: shipped name, checkpoint, or TorchScript .pt (with --input-spec).",
)
@input_spec_option
@dataset_options
@click.option(
    "--arch",
    default="lrcn-small",
    show_default=True,
    help="Detection network: a registered architecture with a per-frame path (lrcn, lrcn-small, test-lrcn).",
)
@click.option(
    "--size",
    type=click.IntRange(min=16),
    default=None,
    help="Frame side of the detection network's view [default: the architecture's].",
)
@click.option("--epochs", type=click.IntRange(min=1), default=5, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True)
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=2e-3, show_default=True)
@click.option("--tau", type=click.FloatRange(min=0, min_open=True), default=2.0, show_default=True, help="Temperature.")
@click.option(
    "--gt-weight",
    type=click.FloatRange(min=0),
    default=0.5,
    show_default=True,
    help="Weight of the ground-truth loss, used when the data set's classes are the classifier's.",
)
@click.option("--num-videos", type=click.IntRange(min=1), default=1000, show_default=True, help="Synthetic: clips.")
@click.option(
    "--test-videos",
    type=click.IntRange(min=0),
    default=200,
    show_default=True,
    help="Synthetic: test clips for the agreement with the classifier (0: skip).",
)
@click.option("--augment/--no-augment", default=True, show_default=True)
@click.option(
    "--adversarial-eps",
    type=click.FloatRange(min=0, max=1),
    default=0.0,
    show_default=True,
    help="Adversarial training (Madry PGD): l_inf budget on the [0, 1] pixel grid, e.g. 0.0314 = 8/255 (0: off).",
)
@click.option(
    "--adversarial-steps",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="PGD steps per batch of adversarial training (random start, step 2.5 eps / steps).",
)
@click.option(
    "--init",
    "init_ref",
    default=None,
    help="Start from this checkpoint (shipped name or path) of the same architecture, classes and view.",
)
@cache_option
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    required=True,
    help="Detector checkpoint (OUT.safetensors + OUT.json; resumable state OUT-last.*).",
)
@resume_option
@device_option
@seed_option
@json_option
@click.pass_context
def command(
    ctx,
    classifier_ref,
    input_spec,
    dataset,
    root,
    arch,
    size,
    epochs,
    batch_size,
    lr,
    tau,
    gt_weight,
    num_videos,
    test_videos,
    augment,
    adversarial_eps,
    adversarial_steps,
    init_ref,
    cache,
    out,
    resume,
    device,
    seed,
    as_json,
):
    """Train a per-frame detection network that speaks CLASSIFIER's label space.

    Every frame of a clip learns the label the classifier gives the whole clip (distillation on
    its softened outputs; ground truth mixed in when the data set's classes are the
    classifier's). The result is a CNN+LSTM checkpoint for `vidshield detect / calibrate / scan
    --model OUT`; its JSON records the classifier's hash, and `scan` refuses to pair it with
    another classifier unless --allow-mismatch.

    \b
    Examples:
      vidshield train-detector --classifier synthetic-c3d --dataset synthetic --out runs/det-c3d
      vidshield train-detector --classifier my/x3d.pt --input-spec my/x3d.json --dataset folder \\
          --root my/clips --arch lrcn-small --size 112 --out runs/det-x3d --device cuda
      vidshield train-detector --classifier synthetic-lrcn --dataset synthetic --init synthetic-lrcn \
          --adversarial-eps 0.0314 --out runs/det-robust   # adversarially trained (PGD, 8/255)
      vidshield train-detector ... --resume    # continue after an interruption
      torchrun --nproc-per-node 2 -m vidshield train-detector --classifier synthetic-c3d --dataset synthetic \
          --batch-size 32 --out runs/det-c3d     # 2 GPUs (NCCL) or CPU processes (gloo); 32 = global batch

    Under torchrun, --batch-size is the global batch split over the processes (the run equals one
    process with that batch); rank 0 writes the checkpoints, which resume on any number of
    processes, and evaluates.
    """
    from vidshield import ddp
    from vidshield.detection.train_detector import agreement, train_detector
    from vidshield.models import create_model, load_model
    from vidshield.models.adapter import load_classifier
    from vidshield.models.datasets import dataset_for_spec
    from vidshield.models.registry import MODEL_REGISTRY

    require_root(dataset, root)
    if arch not in MODEL_REGISTRY:
        raise click.BadParameter(f"unknown architecture {arch!r}", param_hint="--arch")
    dev = ddp.init_from_env(device) or resolve_device(device)
    ctx.call_on_close(ddp.close)
    seed_everything(seed)
    classifier = load_classifier(classifier_ref, input_spec=input_spec, device=dev)
    cspec = classifier.input_spec
    probe = create_model(arch, num_classes=classifier.num_classes)
    if not probe.has_frame_logits:
        raise click.BadParameter(f"{arch} has no per-frame path; pick an lrcn* architecture", param_hint="--arch")
    side = (probe.input_spec.height, probe.input_spec.width) if size is None else (size, size)
    student = create_model(arch, num_classes=classifier.num_classes, input_size=(cspec.frames, *side))
    if init_ref is not None:  # its weights and its view (size, normalisation)
        start = load_model(init_ref)
        view = (start.input_spec.frames, start.input_spec.height, start.input_spec.width)
        if (start.arch_name, start.num_classes) != (arch, student.num_classes) or (
            size is not None and view != (cspec.frames, size, size)
        ):
            raise click.BadParameter(
                f"{printable(init_ref)} is {start.arch_name} with {start.num_classes} classes at "
                f"{'x'.join(map(str, view))}; this run trains {arch} with {student.num_classes}"
                + ("" if size is None else f" at {cspec.frames}x{size}x{size}"),
                param_hint="--init",
            )
        student = start
    count = num_videos if dataset == "synthetic" else None
    train_set = dataset_for_spec(
        dataset, cspec, split="train", root=root, num_videos=count, seed=seed, augment=augment, cache=cache
    )
    data_classes = list(
        getattr(train_set, "classes", None) or getattr(getattr(train_set, "dataset", None), "classes", [])
    )
    use_labels = bool(classifier.class_names) and data_classes == list(classifier.class_names) and gt_weight > 0
    metadata = {
        "dataset": {"name": dataset, "root": str(root) if root else None, "train_videos": len(train_set)},
        "ground_truth_used": use_labels,
        "seed": seed,
        "command": command_line(ctx),
        "initialised_from": init_ref,
    }
    result = train_detector(
        student,
        classifier,
        train_set,
        out=out,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        tau=tau,
        gt_weight=gt_weight,
        use_labels=use_labels,
        adversarial_eps=adversarial_eps,
        adversarial_steps=adversarial_steps,
        classifier_ref=str(classifier_ref),
        device=dev,
        resume=resume,
        seed=seed,
        extra_metadata=metadata,
        progress=not as_json,
    )
    if not ddp.world().is_main:
        return 0
    summary = {"detector": str(result["best_path"]), "serves": result["serves"], "ground_truth_used": use_labels}
    summary["last_epoch"] = result["history"][-1] if result["history"] else None
    tests = test_videos if dataset == "synthetic" else None
    if tests != 0:
        import torch

        from vidshield.models.checkpoints import save_model

        trained = load_model(result["best_path"], device=dev)
        test_set = dataset_for_spec(dataset, cspec, split="test", root=root, num_videos=tests, seed=seed, cache=cache)
        clips = torch.stack([test_set[i][0] for i in range(len(test_set))])
        truth = torch.tensor([int(test_set[i][1]) for i in range(len(test_set))]) if use_labels else None
        summary["test"] = agreement(trained, classifier, clips, labels=truth, attack_eps=adversarial_eps)
        trained.metadata["metrics"] = {**trained.metadata.get("metrics", {}), **summary["test"]}
        save_model(trained, result["best_path"], metadata=trained.metadata)
    if as_json:
        echo_json(summary)
    else:
        click.echo(
            f"detector: {printable(summary['detector'])} (serves {printable(classifier_ref)}, "
            f"sha256 {result['serves']['sha256'][:12]})"
        )
        if "test" in summary:
            t = summary["test"]
            click.echo(
                f"agreement with the classifier on {t['clips']} test clips: frames {t['frame_agreement']:.4f}, "
                f"clips (majority frame label) {t['clip_agreement']:.4f}"
            )
            if "robust_frame_agreement" in t:
                click.echo(
                    f"under PGD ({t['attack_steps']} steps, eps {t['attack_eps']:.4f}): frames "
                    f"{t['robust_frame_agreement']:.4f}, clips {t['robust_clip_agreement']:.4f}"
                )
    return 0

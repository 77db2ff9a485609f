"""``vidshield attack``: build an adversarial (or clean) data set: lossless clips + manifest.json."""

from __future__ import annotations

from pathlib import Path

import click

from vidshield.cli.options import (
    comdefend_option,
    command_line,
    config_option,
    dataset_options,
    device_option,
    echo_json,
    json_option,
    polluted_option,
    qp_option,
    require_root,
    resolve_device,
    seed_option,
    squeeze_check_option,
    vote_option,
)

#: ``none`` (clean export) and every name of the attack registry the command can configure.
ATTACK_NAMES = ("none", "sparse", "dense", "pgd", "framing", "consistent-sparse", "evasive-dense", "pipeline", "spsa")
#: The adaptive attacks (vidshield.attacks.adaptive): they know a detector; pipeline and spsa the whole pipeline.
_ADAPTIVE = ("consistent-sparse", "evasive-dense", "pipeline", "spsa")
_PIPELINE = ("pipeline", "spsa")
#: where a universal attack keeps its trained perturbation in --out
_CHECKPOINTS = {"dense": "universal", "framing": "framing"}


def _parse_frames(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(f) for f in text.split(",") if f.strip()]
    except ValueError as e:
        raise click.BadParameter(f"expected comma-separated frame indices, got {text!r}", param_hint="--frames") from e


def _trained(out: Path, attack_name: str) -> bool:
    return (out / f"{_CHECKPOINTS[attack_name]}.safetensors").is_file()


def _stack(dataset, limit: int | None):
    import torch

    n = len(dataset) if limit is None else min(limit, len(dataset))
    items = [dataset[i] for i in range(n)]
    return torch.stack([v for v, _ in items]), torch.tensor([int(label) for _, label in items], dtype=torch.int64)


#: option -> the attacks it is for (the others refuse it when given).
_OPTION_ATTACKS = {
    "target_class": tuple(n for n in ATTACK_NAMES if n not in _ADAPTIVE),
    "lam": ("sparse", "consistent-sparse", "evasive-dense", "pipeline"),
    "restarts": ("consistent-sparse", "evasive-dense", "pipeline"),
    "layout": _ADAPTIVE,
    "detector_ref": _ADAPTIVE,
    "config": _ADAPTIVE,
    **dict.fromkeys(("comdefend", "qp", "polluted", "squeeze_check", "vote"), _PIPELINE),
}


def _refuse_unused(ctx: click.Context, attack_name: str) -> None:
    """A usage error for an option given on the command line that ``attack_name`` does not use."""
    for name, attacks in _OPTION_ATTACKS.items():
        if attack_name not in attacks and ctx.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE:
            opt = next(p for p in ctx.command.params if p.name == name)
            raise click.UsageError(f"{max(opt.opts, key=len)} is only for --attack {' / '.join(attacks)}")


def _known_detector(attack_name, model, model_name, detector_ref, config, device):
    """The detector a consistent-sparse / evasive-dense attacker evades: ``--detector`` (or the
    victim itself) with ``--config``'s score and thresholds."""
    from vidshield.detection import DetectorConfig, TemporalConsistencyDetector, load_detector

    if detector_ref is not None:
        return load_detector(detector_ref, config, device=device)
    if not getattr(model, "has_frame_logits", False):
        raise click.UsageError(
            f"--attack {attack_name} evades a detector: the victim {model_name} has no per-frame path, so "
            "give --detector (a CNN+LSTM, e.g. synthetic-lrcn)"
        )
    return TemporalConsistencyDetector.from_config(DetectorConfig.load(config) if config else DetectorConfig(), model)


@click.command("attack")
@click.option(
    "--attack",
    "attack_name",
    type=click.Choice(ATTACK_NAMES),
    required=True,
    help="sparse (Wei et al. 2019), dense (C-DUP / 2D-DUP, Li et al. 2019), pgd, framing, none (clean export), "
    "or an adaptive attack that knows the defense: consistent-sparse / evasive-dense (fool the victim while "
    "the detector's scores stay clean), pipeline (PGD through detect -> route -> defend -> classify) and spsa "
    "(gradient-free, on the real pipeline).",
)
@click.option("--model", "model_name", required=True, help="Shipped model name or checkpoint path (the victim).")
@dataset_options
@click.option("--split", type=click.Choice(["train", "test"]), default="test", show_default=True)
@click.option(
    "--num-videos", type=click.IntRange(min=1), default=200, show_default=True, help="Synthetic: clips in the split."
)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Attack only the first N clips.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Output folder (resumed if it exists).")
@click.option(
    "--target-class",
    type=int,
    default=None,
    help="sparse/pgd/framing: targeted attack towards this class; dense: the class whose clips to fool.",
)
@click.option(
    "--steps",
    type=click.IntRange(min=1),
    default=None,
    help="Attack iterations (sparse 100, pgd 10, adaptive 100, spsa 50).",
)
@click.option(
    "--lam",
    type=click.FloatRange(min=0),
    default=None,
    help="sparse: weight of the l2,1 term (1.0); consistent-sparse / evasive-dense / pipeline: first weight of "
    "the detector penalty (1.0 / 1.0 / 0.1), then scheduled per clip.",
)
@click.option("--lr", type=float, default=None, help="sparse: Adam lr (1e-3); dense: 0.002; framing: 0.1.")
@click.option(
    "--num-frames",
    type=click.IntRange(min=1),
    default=None,
    help="sparse: frames to perturb (10); pgd: perturb only this many spread frames; adaptive: frames to "
    "attack (4; evasive-dense: every frame).",
)
@click.option("--frames", "frames_text", default=None, help="sparse/pgd: explicit frame indices, e.g. 0,11,12,13.")
@click.option(
    "--mask-mode",
    type=click.Choice(["spread", "salient", "given"]),
    default=None,
    help="sparse: how frames are chosen.",
)
@click.option(
    "--eps",
    type=float,
    default=None,
    help="pgd: l_inf budget (8/255); sparse: optional l_inf cap; adaptive: l_inf budget (16/255; evasive-dense 8/255).",
)
@click.option(
    "--restarts",
    type=click.IntRange(min=1),
    default=None,
    help="consistent-sparse / evasive-dense / pipeline: restarts (2).",
)
@click.option(
    "--layout",
    type=click.Choice(["spread", "run", "all"]),
    default=None,
    help="adaptive: where the attacked frames lie: spread from frame 0, a contiguous run from frame 0, or every "
    "frame [default: run for consistent-sparse, spread for pipeline / spsa, all for evasive-dense].",
)
@click.option(
    "--detector",
    "detector_ref",
    default=None,
    help="adaptive: the detection network (CNN+LSTM) the attacker knows [default: the victim, which then "
    "needs a per-frame path]. pipeline / spsa: the pipeline is built as `vidshield scan --model DETECTOR "
    "--classifier MODEL` with the options below.",
)
@config_option
@comdefend_option
@qp_option
@polluted_option
@squeeze_check_option
@vote_option
@click.option("--p-max", type=float, default=10 / 255, show_default=True, help="dense: l_inf bound of the generator.")
@click.option("--two-d", is_flag=True, help="dense: 2D-DUP (one frame tiled) instead of C-DUP.")
@click.option(
    "--width", type=click.IntRange(min=1), default=8, show_default=True, help="framing: border width in pixels."
)
@click.option(
    "--generator",
    "generator_path",
    type=click.Path(path_type=Path),
    default=None,
    help="dense/framing: a trained perturbation checkpoint to apply.",
)
@click.option(
    "--train-steps",
    type=click.IntRange(min=1),
    default=None,
    help="dense/framing: train the universal perturbation for this many steps on the train split first.",
)
@click.option(
    "--train-videos",
    type=click.IntRange(min=1),
    default=200,
    show_default=True,
    help="dense/framing: training clips to use from the train split.",
)
@device_option
@seed_option
@json_option
@click.pass_context
def command(
    ctx,
    attack_name,
    model_name,
    dataset,
    root,
    split,
    num_videos,
    limit,
    out,
    target_class,
    steps,
    lam,
    lr,
    num_frames,
    frames_text,
    mask_mode,
    eps,
    restarts,
    layout,
    detector_ref,
    config,
    comdefend,
    qp,
    polluted,
    squeeze_check,
    vote,
    p_max,
    two_d,
    width,
    generator_path,
    train_steps,
    train_videos,
    device,
    seed,
    as_json,
):
    """Attack every clip of a data set split and write the results as lossless .mkv files plus
    manifest.json (label, predictions before/after, success, perturbed frames, l2,1, l_inf, mean
    absolute perturbation on 0-255, PSNR; attack config, model, data set, seed). Rerunning into the
    same --out resumes: clips already in the manifest are skipped. Clips are built at the model's
    input size and quantised to 8 bits before the attack.

    \b
    Examples:
      vidshield attack --attack sparse --model synthetic-lrcn --out sets/sparse --limit 100
      vidshield attack --attack dense --model synthetic-c3d --train-steps 500 --out sets/dense
      vidshield attack --attack dense --model synthetic-c3d --generator sets/dense/universal --out sets/dense-lrcn
      vidshield attack --attack pgd --model synthetic-lrcn --eps 0.0157 --num-frames 4 --out sets/pgd4
      vidshield attack --attack none --model synthetic-lrcn --out sets/clean
      vidshield attack --attack consistent-sparse --model synthetic-lrcn --out sets/consistent --limit 12
      vidshield attack --attack pipeline --model synthetic-lrcn --no-vote --out sets/pipeline --limit 12

    The adaptive attacks are untargeted and record in the manifest whether the victim's own label
    changed; whether the pipeline was fooled is what `vidshield scan` (or
    benchmarks/bench_security.py) says on the written clips.
    """
    from vidshield import attacks as A
    from vidshield.attacks.dataset import write_adversarial_set
    from vidshield.errors import CheckpointError
    from vidshield.models import load_model
    from vidshield.models.datasets import dataset_for_spec
    from vidshield.pipeline import build_pipeline
    from vidshield.utils import progress_bar, seed_everything

    require_root(dataset, root)
    universal = attack_name in _CHECKPOINTS
    if universal and generator_path is None and train_steps is None and not _trained(out, attack_name):
        raise click.UsageError(f"--attack {attack_name} needs --generator PATH or --train-steps N")
    if generator_path is not None and attack_name not in ("dense", "framing"):
        raise click.UsageError("--generator is only for --attack dense or framing")
    _refuse_unused(ctx, attack_name)
    frames = _parse_frames(frames_text)
    seed_everything(seed)
    dev = resolve_device(device)
    defender, pipeline, detector = None, None, None
    if attack_name in _ADAPTIVE:  # what the adaptive attacker knows, for the manifest
        defender = {"detector": str(detector_ref or model_name), "config": None if config is None else str(config)}
    if attack_name in _PIPELINE:
        pipeline = build_pipeline(
            model=detector_ref or model_name,
            classifier=None if detector_ref is None else model_name,
            config=config,
            comdefend=comdefend,
            temporal={"qp": qp},
            polluted=polluted,
            squeeze_check=squeeze_check,
            vote=vote,
            device=dev,
        )
        model = pipeline.classifier
        defender |= {
            "comdefend": pipeline.spatial.weights,
            "qp": qp,
            "polluted": polluted,
            "squeeze_check": pipeline.squeeze_check,
        }
        defender["vote"] = pipeline.vote
        defender["detection_network"] = pipeline.detector.config.model  # e.g. the one the model names
    else:
        model = load_model(model_name, device=dev)
    if attack_name in ("consistent-sparse", "evasive-dense"):
        detector = _known_detector(attack_name, model, model_name, detector_ref, config, dev)
    spec = model.input_spec
    synthetic = dataset == "synthetic"
    data = dataset_for_spec(
        dataset, spec, split=split, root=root, num_videos=num_videos if synthetic else None, seed=seed
    )
    if len(data.classes) != model.num_classes:
        raise CheckpointError(
            f"{model_name} has {model.num_classes} classes but the {dataset} data set has {len(data.classes)}"
        )

    if generator_path is not None and attack_name == "dense":  # a bad file is refused before the work
        A.create_attack("dense", model, checkpoint=generator_path)

    progress = progress_bar(disable=as_json, transient=False)
    with progress:

        def train_data():
            train = dataset_for_spec(
                dataset, spec, split="train", root=root, num_videos=train_videos if synthetic else None, seed=seed
            )
            return _stack(train, train_videos)

        def report(task):
            return lambda step, loss: progress.update(
                task, completed=step + 1, description=f"training (loss {loss:.3f})"
            )

        adaptive_kwargs = dict(eps=eps, steps=steps, num_frames=num_frames, layout=layout)
        kwargs = {  # the options each attack takes; None leaves the attack's own default
            "sparse": dict(frames=frames, num_frames=num_frames, mask_mode=mask_mode, lam=lam, lr=lr, steps=steps),
            "pgd": dict(eps=eps, steps=steps, frames=frames, num_frames=num_frames),
            "consistent-sparse": dict(adaptive_kwargs, restarts=restarts, lam=lam),
            "evasive-dense": dict(adaptive_kwargs, restarts=restarts, lam=lam),
            "pipeline": dict(adaptive_kwargs, restarts=restarts, lam=lam, pipeline=pipeline),
            "spsa": dict(adaptive_kwargs, pipeline=pipeline),
        }.get(attack_name, {})
        kwargs = {k: v for k, v in kwargs.items() if v is not None}
        if attack_name in ("consistent-sparse", "evasive-dense"):  # evade this detector's clean verdict
            kwargs |= {"detector_model": detector.model, "thresholds": {detector.score: detector.gamma1}}
        if attack_name == "sparse":
            kwargs["eps"] = eps  # sparse: an optional l_inf cap (None: none)
        if attack_name in ("sparse", "pgd"):
            kwargs["targeted"] = target_class is not None
        if universal:  # train the perturbation first (unless given or trained before), then load it
            kwargs["checkpoint"] = generator_path or out / _CHECKPOINTS[attack_name]
            if generator_path is None and not _trained(out, attack_name):
                videos, labels = train_data()
                task = progress.add_task(f"training {attack_name} perturbation", total=train_steps)
                meta = {"model": str(model_name), "dataset": dataset, "steps": train_steps, "seed": seed}
                if attack_name == "dense":
                    A.train_cdup(
                        model,
                        videos,
                        labels,
                        kwargs["checkpoint"],
                        p_max=p_max,
                        two_d=two_d,
                        steps=train_steps,
                        lr=lr or 0.002,
                        target_class=target_class,
                        seed=seed,
                        progress=report(task),
                        metadata=meta,
                    )
                else:
                    framing = A.train_framing(
                        model,
                        videos,
                        labels,
                        border=width,
                        target_class=target_class,
                        steps=train_steps,
                        lr=lr or 0.1,
                        seed=seed,
                        progress=report(task),
                    )
                    A.save_framing(
                        kwargs["checkpoint"], framing, width=width, metadata=meta | {"target_class": target_class}
                    )
            target_class = None  # the perturbation is fixed: the clips are attacked untargeted
        try:
            attack = None if attack_name == "none" else A.create_attack(attack_name, model, **kwargs)
        except ValueError as e:  # a setting the attack refuses (e.g. --eps 0)
            raise click.UsageError(f"--attack {attack_name}: {e}") from e

        header = {
            "attack": attack_name,
            "attack_config": None if attack is None else attack.config(),
            "model": str(model_name),
            "architecture": getattr(model, "arch_name", None),
            "dataset": {
                "name": dataset,
                "root": None if root is None else str(root),
                "split": split,
                "num_videos": num_videos if synthetic else None,
                "frames": spec.frames,
                "height": spec.height,
                "width": spec.width,
            },
            "command": command_line(ctx),
        }
        if defender is not None:
            header["defender"] = defender
        total = len(data) if limit is None else min(limit, len(data))
        task = progress.add_task(f"attack {attack_name}", total=total)
        manifest = write_adversarial_set(
            out,
            data,
            model,
            attack,
            header=header,
            indices=range(total),
            target=target_class,
            seed=seed,
            progress=lambda done, n: progress.update(task, completed=done),
        )
    summary = manifest["summary"]
    if as_json:
        echo_json({"out": str(out), "attack": attack_name, "model": str(model_name), **summary})
        return 0
    click.echo(f"{summary['clips']} clips in {out}")
    if summary["clips"]:
        click.echo(
            f"accuracy {summary['accuracy_before']:.3f} -> {summary['accuracy_after']:.3f}, success rate "
            f"{summary['success_rate']:.3f}, perturbed frames {summary['mean_perturbed_frames']:.1f}, "
            f"l_inf {summary['mean_linf'] * 255:.1f}/255, mean |d| {summary['mean_abs_255']:.2f}/255"
        )
    return 0

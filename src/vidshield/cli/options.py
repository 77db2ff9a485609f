"""Options shared by several commands."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

import click

from vidshield.names import DATASET_NAMES, DEFAULT_MODEL, POLLUTED_RULES

if TYPE_CHECKING:
    import torch


def options(*decorators):
    """Apply several click options at once, in the order given (as ``--help`` lists them)."""

    def apply(f):
        for option in reversed(decorators):
            f = option(f)
        return f

    return apply


device_option = click.option(
    "--device",
    default="auto",
    show_default=True,
    help="torch device: auto (CUDA when present, else CPU), cpu, cuda, cuda:1 ...",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON instead of a table.")
seed_option = click.option("--seed", default=0, show_default=True, type=int, help="Random seed.")


# --- data sets and training (train, train-comdefend, evaluate, attack) -------------------------

resume_option = click.option("--resume", is_flag=True, help="Continue from OUT-last.* when it exists.")
num_workers_option = click.option("--num-workers", type=click.IntRange(min=0), default=0, show_default=True)
cache_option = click.option(
    "--cache", type=click.Path(path_type=Path), default=None, help="Frame cache folder for decoded data sets."
)
dataset_options = options(
    click.option("--dataset", type=click.Choice(DATASET_NAMES), default="synthetic", show_default=True),
    click.option("--root", type=click.Path(path_type=Path), default=None, help="Data set root (not for synthetic)."),
)


def require_root(dataset: str, root) -> None:
    """``--root`` is needed by every data set but the synthetic one."""
    if dataset != "synthetic" and root is None:
        raise click.UsageError(f"--root is required for --dataset {dataset}")


def command_line(ctx: click.Context) -> str:
    """The resolved command, every option given or defaulted spelled out (flags by the name of
    their value, repeatable options once per value), so a checkpoint says how to reproduce it."""
    parts = ["vidshield", ctx.info_name]
    for param in ctx.command.params:
        value = ctx.params.get(param.name)
        if not isinstance(param, click.Option) or value is None or value == ():
            continue
        name = max(param.opts, key=len)
        if param.is_flag:
            if param.secondary_opts:
                parts.append(name if value else max(param.secondary_opts, key=len))
            elif value:
                parts.append(name)
        elif isinstance(value, tuple):
            for v in value:
                parts += [name, str(v)]
        else:
            parts += [name, str(value)]
    return shlex.join(parts)


# --- the detect -> route -> defend pipeline (scan, defend) ------------------------------------

model_option = click.option(
    "--model",
    "model_ref",
    default=DEFAULT_MODEL,
    show_default=True,
    help="Detection network: a CNN+LSTM, shipped name or checkpoint (a shipped one brings its shipped "
    "config, e.g. ut-lrcn: feature_spike calibrated on clean real footage at a 1 % window false-alarm budget).",
)
classifier_option = click.option(
    "--classifier",
    "classifier_ref",
    default=None,
    help="Classifier to protect: shipped name, checkpoint, or TorchScript .pt (with --input-spec or a JSON "
    "beside it) [default: the classifier a distilled detector serves, else the detection network itself].",
)
input_spec_option = click.option(
    "--input-spec",
    default=None,
    help="TorchScript classifier's input: a JSON file or string with layout (NCTHW|NTCHW), frames, height, "
    "width, mean, std, class_names [default: model.json beside model.pt].",
)
allow_mismatch_option = click.option(
    "--allow-mismatch",
    is_flag=True,
    help="Pair a detection network with a classifier other than the one it was trained for.",
)
config_option = click.option(
    "--config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Detector config from `vidshield calibrate` (thresholds).",
)
comdefend_option = click.option(
    "--comdefend",
    default=None,
    help="ComDefend weights of the spatial defense (shipped name or path). Default: the ones the "
    "classifier's checkpoint names (comdefend-real for the UT-Interaction models), else comdefend.",
)
qp_option = click.option(
    "--qp", type=click.IntRange(0, 51), default=36, show_default=True, help="Temporal defense: residual QP (strength)."
)
polluted_option = click.option(
    "--polluted",
    type=click.Choice(list(POLLUTED_RULES)),
    default="exceptions",
    show_default=True,
    help="Frames the temporal defense rebuilds: the paper's exception frames, every frame off the clip's "
    "majority label, or the exception frames plus the end frames when they disagree with two agreeing neighbours.",
)
squeeze_check_option = click.option(
    "--squeeze-check/--no-squeeze-check",
    default=None,
    help="Beyond the paper: also purify videos detected clean; a label change under the spatial "
    "defense marks them as attacked (catches universal perturbations that alpha misses; one spatial pass "
    "per clip) [default: the detection network's checkpoint; off for the shipped ones].",
)
vote_option = click.option(
    "--vote/--no-vote",
    default=None,
    help="Beyond the paper: answer the majority of the detection network's per-frame labels (k attacked "
    "frames move at most k votes) [default: the detector config's vote, else the model's: on for "
    "synthetic-lrcn, off for ut-lrcn, whose weak per-frame network costs clean accuracy].",
)
#: Everything :func:`vidshield.pipeline.build_pipeline` takes (``scan``, ``scan-corpus``).
pipeline_options = options(
    model_option,
    classifier_option,
    input_spec_option,
    allow_mismatch_option,
    config_option,
    comdefend_option,
    qp_option,
    polluted_option,
    squeeze_check_option,
    vote_option,
    device_option,
)


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; anything else is passed to ``torch.device``."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise click.BadParameter(str(e), param_hint="--device") from e
    if device.type == "cuda" and not torch.cuda.is_available():
        raise click.BadParameter("CUDA is not available on this machine", param_hint="--device")
    return device


def echo_json(obj) -> None:
    click.echo(json.dumps(obj, indent=2, default=str))

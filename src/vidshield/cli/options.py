"""Options shared by several commands."""

from __future__ import annotations

import json

import click
import torch

device_option = click.option(
    "--device",
    default="auto",
    show_default=True,
    help="torch device: auto (CUDA when present, else CPU), cpu, cuda, cuda:1 ...",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON instead of a table.")
seed_option = click.option("--seed", default=0, show_default=True, type=int, help="Random seed.")


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; anything else is passed to ``torch.device``."""
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

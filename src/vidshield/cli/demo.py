"""``vidshield demo``: the whole system on a few synthetic videos, offline, in about a minute."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

from vidshield.cli.options import device_option, resolve_device, seed_option

#: The universal (C-DUP) perturbation trained against the shipped synthetic C3D, shipped so the demo
#: need not train a generator (`vidshield reproduce` trains its own).
DEMO_PERTURBATION = "synthetic-c3d-cdup"


@click.command("demo")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Where to write the report and figures [default: a new temporary folder].",
)
@click.option("--num-videos", type=click.IntRange(min=4), default=12, show_default=True)
@seed_option
@device_option
def command(out, num_videos, seed, device):
    """Make synthetic videos, attack them sparsely and densely with the shipped models, detect,
    route, defend and classify; print a small Table 3 / Table 4 and where the figures are.

    Needs no data set and no download. A reduced version of `vidshield reproduce` (fewer clips,
    and the shipped universal perturbation instead of training one), so its numbers are noisy.

    \b
    Examples:
      vidshield demo
      vidshield demo --out demo-out --num-videos 24
    """
    from vidshield.cli.reproduce import print_summary, progress_bar
    from vidshield.eval.reproduce import ReproduceConfig, reproduce

    out = out or Path(tempfile.mkdtemp(prefix="vidshield-demo-"))
    cfg = ReproduceConfig(dataset="synthetic", num_test=num_videos, dense_perturbation=DEMO_PERTURBATION, seed=seed)
    with progress_bar() as bar:
        results = reproduce(cfg, out, device=resolve_device(device), progress=bar, command="vidshield demo")
    print_summary(results, out)
    return 0

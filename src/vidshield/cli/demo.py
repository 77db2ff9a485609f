"""``vidshield demo``: the whole system on a few synthetic videos, offline, in under two minutes."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

from vidshield.cli.options import device_option, resolve_device, seed_option
from vidshield.utils import fewer_torch_threads, progress_bar

#: The demo's sparse attack: 30 Adam steps at 3x the full run's step size (100 steps of 1e-3): about
#: the same distance travelled (half the clips flipped on the demo's 8 clips, against 3 of 8 for the
#: full setting), in a third of the time.
DEMO_SPARSE_STEPS, DEMO_SPARSE_LR = 30, 3e-3

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
@click.option("--num-videos", type=click.IntRange(min=4), default=8, show_default=True)
@click.option(
    "--sparse-steps",
    type=click.IntRange(min=1),
    default=DEMO_SPARSE_STEPS,
    show_default=True,
    help=f"Adam steps of the sparse attack, at step size {DEMO_SPARSE_LR} (the full run: 100 steps of 1e-3).",
)
@seed_option
@device_option
def command(out, num_videos, sparse_steps, seed, device):
    """Make synthetic videos, attack them sparsely and densely with the shipped models, detect,
    route, defend and classify; print a small Table 3 / Table 4 and where the figures are.

    Needs no data set and no download. A reduced version of `vidshield reproduce` (fewer clips,
    fewer sparse-attack steps, and the shipped universal perturbation instead of training one),
    so its numbers are noisy; about a minute on two CPU cores.

    \b
    Examples:
      vidshield demo
      vidshield demo --out demo-out --num-videos 24 --sparse-steps 100
    """
    click.echo(
        f"vidshield demo: a reduced run ({num_videos} synthetic test clips, {sparse_steps} sparse-attack steps "
        f"of {DEMO_SPARSE_LR}, "
        "the shipped C-DUP perturbation); the full run: vidshield reproduce --dataset synthetic --out DIR"
    )
    click.echo("loading the shipped models ...")
    from vidshield.cli.reproduce import print_summary
    from vidshield.eval.reproduce import ReproduceConfig, reproduce

    out = out or Path(tempfile.mkdtemp(prefix="vidshield-demo-"))
    cfg = ReproduceConfig(
        dataset="synthetic",
        num_test=num_videos,
        sparse_steps=sparse_steps,
        sparse_lr=DEMO_SPARSE_LR,
        dense_perturbation=DEMO_PERTURBATION,
        seed=seed,
    )
    # One intra-op thread fewer than the cores (one on two cores): the same numbers, and on a
    # shared two-core machine about half the CPU time (a second thread spins while it waits).
    with fewer_torch_threads(1), progress_bar(lines=True) as bar:
        results = reproduce(cfg, out, device=resolve_device(device), progress=bar, command="vidshield demo")
    print_summary(results, out)
    click.echo(
        f"(reduced run: {num_videos} clips, {sparse_steps} sparse steps; "
        "full: vidshield reproduce --dataset synthetic --out DIR)"
    )
    return 0

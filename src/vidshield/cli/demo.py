"""``vidshield demo``: the whole system on a few synthetic videos, offline, in under two minutes."""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from pathlib import Path

import click

from vidshield.cli.options import device_option, resolve_device

#: The demo's sparse attack: 30 Adam steps at 3x the full run's step size (100 steps of 1e-3): about
#: the same distance travelled (half the clips flipped on the demo's 8 clips, against 3 of 8 for the
#: full setting), in a third of the time.
DEMO_SPARSE_STEPS, DEMO_SPARSE_LR = 30, 3e-3

#: The universal (C-DUP) perturbation trained against the shipped synthetic C3D, shipped so the demo
#: need not train a generator (`vidshield reproduce` trains its own).
DEMO_PERTURBATION = "synthetic-c3d-cdup"


class LineProgress:
    """The progress bar for logs (stdout not a terminal, e.g. CI): one plain line per task at its
    start, then at most one every ``every`` seconds and one when it completes; inside the ``with``
    block, the running task's line is repeated every ``every`` seconds even without progress (a
    batch that takes a while still shows the run is alive). The subset of
    ``rich.progress.Progress`` the stages use (``add_task``, ``advance``, ``update``)."""

    def __init__(self, echo=click.echo, *, every: float = 5.0):
        self.echo, self.every = echo, every
        self.tasks: dict[int, dict] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    def __enter__(self) -> LineProgress:
        self._beat = threading.Thread(target=self._heartbeat, name="vidshield-progress", daemon=True)
        self._beat.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join()

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.every):
            with self._lock:
                if self.tasks:
                    task = max(self.tasks)
                    t = self.tasks[task]
                    running = t["total"] is None or t["done"] < t["total"]
                    if running and time.monotonic() - t["shown"] >= self.every:
                        t["shown"] = time.monotonic()
                        self._show(task)

    def add_task(self, description: str, total=None, **_) -> int:
        with self._lock:
            task = len(self.tasks)
            self.tasks[task] = {"description": description, "total": total, "done": 0, "start": time.monotonic()}
            self.tasks[task]["shown"] = self.tasks[task]["start"]
            self._show(task)
        return task

    def advance(self, task: int, advance: float = 1) -> None:
        self.update(task, advance=advance)

    def update(self, task: int, *, advance: float = 0, completed=None, total=None, **_) -> None:
        with self._lock:
            self._update(task, advance, completed, total)

    def _update(self, task: int, advance, completed, total) -> None:
        t = self.tasks[task]
        t["total"] = t["total"] if total is None else total
        t["done"] = completed if completed is not None else t["done"] + advance
        now = time.monotonic()
        finished = t["total"] is not None and t["done"] >= t["total"]
        if finished or now - t["shown"] >= self.every:
            t["shown"] = now
            self._show(task)

    def _show(self, task: int) -> None:
        t = self.tasks[task]
        count = f"{t['done']:g}/{t['total']:g}" if t["total"] else f"{t['done']:g}"
        self.echo(f"  {t['description']}: {count} ({time.monotonic() - t['start']:.0f} s)")


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
@click.option("--seed", type=int, default=0, show_default=True)
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
    from vidshield.cli.reproduce import print_summary, progress_bar
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
    with progress_bar() if sys.stdout.isatty() else LineProgress() as bar:
        results = reproduce(cfg, out, device=resolve_device(device), progress=bar, command="vidshield demo")
    print_summary(results, out)
    click.echo(
        f"(reduced run: {num_videos} clips, {sparse_steps} sparse steps; "
        "full: vidshield reproduce --dataset synthetic --out DIR)"
    )
    return 0

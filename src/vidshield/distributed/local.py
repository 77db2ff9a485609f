"""The local engine: worker processes on this machine, each loading the models once.

The parent hands each worker one video at a time over the worker's own pipe and watches the
processes. A worker that dies (killed, crashed, out of memory) loses only the video it held:
that video goes back to the front of the queue (after ``max_attempts`` losses it gets an error
row instead, so one poison file cannot stall the scan) and a new worker takes the dead one's
place. Workers are started with ``spawn`` (no fork of a process that holds torch threads) and
run one torch thread each: for throughput, run one worker per core (several intra-op threads per
worker spin-wait and collapse when the cores are shared; measured in benchmarks/bench_corpus.py).
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from multiprocessing.connection import wait

from vidshield.distributed.corpus import ScanSettings, Task, lost_row, scan_one, warm_up
from vidshield.errors import VidshieldError

__all__ = ["run_local"]


def _worker(conn, settings: ScanSettings, threads: int) -> None:
    """A worker process: build the pipeline once, then scan the videos it is sent until ``None``."""
    import torch

    torch.set_num_threads(threads)
    try:
        warm_up(settings)
    except BaseException as e:
        conn.send(("failed", f"{type(e).__name__}: {e}"))
        return
    conn.send(("ready", os.getpid()))
    while True:
        try:
            task = conn.recv()
        except EOFError:  # the parent is gone
            return
        if task is None:
            return
        conn.send(("row", scan_one(task.path, settings, known_hash=task.known_hash)))


@dataclass(eq=False)
class _Worker:
    slot: int
    process: mp.Process
    conn: object
    pid: int | None = None
    task: Task | None = None


def _device_for(settings: ScanSettings, slot: int) -> ScanSettings:
    """``cuda`` on a machine with several GPUs: worker ``slot`` takes GPU ``slot % count``."""
    if settings.device != "cuda":
        return settings
    import torch

    count = torch.cuda.device_count()
    return replace(settings, device=f"cuda:{slot % count}") if count > 1 else settings


def run_local(
    tasks: list[Task],
    settings: ScanSettings,
    *,
    workers: int,
    on_result: Callable[[Task, dict | None], None],
    emit: Callable[[str, dict], None],
    max_attempts: int = 3,
) -> dict:
    """Scan ``tasks`` with ``workers`` processes; ``on_result(task, row or None)`` is called in
    this process as each video finishes.

    Returns:
        ``{"retried": videos requeued after a lost worker, "workers_lost": n}``.

    Raises:
        VidshieldError: a worker cannot build the pipeline, or workers keep dying before they
            are ready.
    """
    ctx = mp.get_context("spawn")
    count = max(1, min(workers, len(tasks)))
    queue = deque(tasks)
    stats = {"retried": 0, "workers_lost": 0}
    start_failures = 0

    def start(slot: int) -> _Worker:
        parent, child = ctx.Pipe()
        process = ctx.Process(
            target=_worker,
            args=(child, _device_for(settings, slot), 1),
            name=f"vidshield-scan-{slot}",
            daemon=True,
        )
        process.start()
        child.close()
        return _Worker(slot, process, parent)

    pool = [start(slot) for slot in range(count)]

    def handle(w: _Worker, message) -> None:
        kind, value = message
        if kind == "ready":
            w.pid = value
        elif kind == "failed":
            raise VidshieldError(f"a scan worker could not build the pipeline: {value}")
        else:
            task, w.task = w.task, None
            on_result(task, value)

    def lost(w: _Worker) -> None:
        nonlocal start_failures
        while True:  # a row sent just before the worker died still counts
            try:
                if not w.conn.poll():
                    break
                handle(w, w.conn.recv())
            except (EOFError, OSError):
                break
        pool.remove(w)
        w.conn.close()
        w.process.join(timeout=5)
        stats["workers_lost"] += 1
        if w.pid is None:
            start_failures += 1
            if start_failures > 2 * count:
                raise VidshieldError(f"scan workers keep dying at start-up (exit code {w.process.exitcode})")
        if w.task is not None:
            task = w.task
            task.attempts += 1
            emit("lost", {"path": task.path, "pid": w.pid})
            if task.attempts >= max_attempts:
                on_result(task, lost_row(task, settings))
            else:
                queue.appendleft(task)
                stats["retried"] += 1
        if queue or not pool:
            pool.append(start(w.slot))

    try:
        while queue or any(w.task is not None for w in pool):
            for w in pool:
                if w.pid is not None and w.task is None and queue:
                    w.task = queue.popleft()
                    emit("dispatch", {"path": w.task.path, "pid": w.pid})
                    with contextlib.suppress(OSError):  # a worker that died just now: its sentinel says so below
                        w.conn.send(w.task)
            ready = {w.conn: w for w in pool} | {w.process.sentinel: w for w in pool}
            for obj in wait(list(ready)):
                w = ready[obj]
                if w not in pool:  # replaced earlier in this round
                    continue
                if obj is w.conn:
                    try:
                        message = w.conn.recv()
                    except (EOFError, OSError):
                        lost(w)
                        continue
                    handle(w, message)
                else:
                    lost(w)
    finally:
        for w in pool:
            with contextlib.suppress(OSError):
                w.conn.send(None)
        for w in pool:
            w.process.join(timeout=10)
            if w.process.is_alive():
                w.process.kill()
                w.process.join()
    return stats

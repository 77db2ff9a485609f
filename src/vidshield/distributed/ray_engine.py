"""The Ray engine: CPU tasks decode, actors run the pipeline in batches, with bounded work in flight.

Ray core, not Ray Data: each video is a decode task (hash + decode at the model's view, on
any CPU of the cluster) whose uint8 windows stay in Ray's object store; pipeline actors (one per
``--workers``, on a CPU or a GPU, the models loaded once) take batches of decoded videos. The
driver keeps at most ``max_in_flight`` videos decoding, decoded or being scanned, so memory stays
bounded when decoding outruns inference, and writes each row as it arrives.

Failures: a bad video becomes an error row inside the task. A lost decode worker or actor (node
lost, killed, out of memory) fails only the calls it held; the driver decodes those videos again
(a retried video is scanned in a batch of its own, so one poison file cannot take innocent
neighbours down with it) and Ray restarts the actor. After ``max_attempts`` losses a video gets an
error row.
"""

from __future__ import annotations

import math
import os
import time
from collections import deque
from collections.abc import Callable

import ray

from vidshield.distributed.corpus import (
    ScanSettings,
    Task,
    decode_video,
    lost_row,
    pipeline_for,
    scan_decoded,
    warm_up,
)
from vidshield.errors import VidshieldError
from vidshield.pipeline import working_spec

__all__ = ["run_ray"]

#: Batches queued on one actor at once (one running, one waiting), so an actor never idles
#: while the driver round-trips.
ACTOR_QUEUE = 2


@ray.remote(num_returns=2, max_retries=0)
def _decode(path: str, settings: ScanSettings, spec, known_hash: str | None):
    return decode_video(path, settings, spec, known_hash=known_hash)


@ray.remote(max_restarts=-1, max_task_retries=0)
class PipelineActor:
    """Holds one pipeline; scans batches of decoded videos."""

    def __init__(self, settings: ScanSettings, threads: int):
        import torch

        torch.set_num_threads(threads)
        self.settings = settings
        warm_up(settings)

    def pid(self) -> int:
        return os.getpid()

    def scan(self, heads, *windows) -> list[dict | None]:
        return [scan_decoded(head, w, self.settings) for head, w in zip(heads, windows)]


def _connect(address: str | None, needed_cpus: float) -> bool:
    """Join or start Ray; True when this call started it (and so shuts it down)."""
    if ray.is_initialized():
        return False
    if address:
        ray.init(address=address, log_to_driver=False)
    else:
        ray.init(
            num_cpus=max(os.cpu_count() or 1, math.ceil(needed_cpus)), include_dashboard=False, log_to_driver=False
        )
    return True


def _wait_for_actor(actor, timeout_s: float = 600.0) -> int:
    """The pid of an actor, once Ray has restarted it (a restart reloads the models)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return ray.get(actor.pid.remote())
        except ray.exceptions.ActorUnavailableError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def run_ray(
    tasks: list[Task],
    settings: ScanSettings,
    *,
    workers: int,
    on_result: Callable[[Task, dict | None], None],
    emit: Callable[[str, dict], None],
    max_attempts: int = 3,
    address: str | None = None,
    batch_size: int = 4,
    max_in_flight: int | None = None,
    cpus_per_worker: float = 1.0,
    gpus_per_worker: float = 0.0,
    decode_cpus: float = 1.0,
) -> dict:
    """Scan ``tasks`` on Ray; ``on_result(task, row or None)`` runs in this process.

    Args:
        workers: pipeline actors.
        address: a Ray cluster to join (``auto``); None starts a local Ray (unless one is
            already initialised in this process, which is then used and left running).
        batch_size: videos per actor call.
        max_in_flight: videos decoding, decoded or being scanned at once (default
            ``3 * workers * batch_size``): the memory bound.
        cpus_per_worker, gpus_per_worker: Ray resources of each actor.
        decode_cpus: Ray CPUs of each decode task.

    Returns:
        ``{"retried": ..., "workers_lost": ...}``.

    Raises:
        VidshieldError: the cluster lacks the CPUs / GPUs the actors ask for.
    """
    needed_cpus = workers * cpus_per_worker + decode_cpus
    owns = _connect(address, needed_cpus)
    actors = []
    try:
        total = ray.cluster_resources()
        if total.get("CPU", 0) < needed_cpus or total.get("GPU", 0) < workers * gpus_per_worker:
            raise VidshieldError(
                f"the Ray cluster has {total.get('CPU', 0):g} CPUs and {total.get('GPU', 0):g} GPUs; "
                f"{workers} workers x ({cpus_per_worker:g} CPU, {gpus_per_worker:g} GPU) plus {decode_cpus:g} CPU "
                "for decoding do not fit: lower --workers or --cpus-per-worker"
            )
        spec = working_spec(pipeline_for(settings))
        threads = max(1, int(cpus_per_worker))
        actors = [
            PipelineActor.options(num_cpus=cpus_per_worker, num_gpus=gpus_per_worker).remote(settings, threads)
            for _ in range(workers)
        ]
        pids = ray.get([a.pid.remote() for a in actors])
        return _drive(
            tasks,
            settings,
            actors,
            pids,
            spec,
            on_result=on_result,
            emit=emit,
            max_attempts=max_attempts,
            batch_size=batch_size,
            limit=max_in_flight or 3 * workers * batch_size,
            decode_cpus=decode_cpus,
        )
    finally:
        for actor in actors:
            ray.kill(actor)
        if owns:
            ray.shutdown()


def _drive(tasks, settings, actors, pids, spec, *, on_result, emit, max_attempts, batch_size, limit, decode_cpus):
    pending = deque(tasks)
    decoding: dict = {}  # head ref -> (task, windows ref)
    ready: deque = deque()  # (task, head, windows ref), decoded, waiting for an actor
    scanning: dict = {}  # scan ref -> (actor index, [(task, head, windows ref)])
    load = [0] * len(actors)
    stats = {"retried": 0, "workers_lost": 0}

    def in_flight() -> int:
        return len(decoding) + len(ready) + sum(len(items) for _, items in scanning.values())

    def lost(task: Task) -> None:
        task.attempts += 1
        emit("lost", {"path": task.path, "pid": None})
        if task.attempts >= max_attempts:
            on_result(task, lost_row(task, settings))
        else:
            pending.appendleft(task)
            stats["retried"] += 1

    def next_batch() -> list:
        if ready[0][0].attempts:  # a retried video goes alone
            return [ready.popleft()]
        batch = []
        while ready and len(batch) < batch_size and not ready[0][0].attempts:
            batch.append(ready.popleft())
        return batch

    while pending or decoding or ready or scanning:
        while pending and in_flight() < limit:
            task = pending.popleft()
            head_ref, windows_ref = _decode.options(num_cpus=decode_cpus).remote(
                task.path, settings, spec, task.known_hash
            )
            decoding[head_ref] = (task, windows_ref)
            emit("decode", {"path": task.path, "in_flight": in_flight()})
        more_coming = bool(pending or decoding)
        for i in sorted(range(len(actors)), key=load.__getitem__):
            # Fill batches while input is coming, but never leave an actor idle.
            while ready and load[i] < ACTOR_QUEUE and (len(ready) >= batch_size or load[i] == 0 or not more_coming):
                items = next_batch()
                ref = actors[i].scan.remote([head for _, head, _ in items], *[w for _, _, w in items])
                scanning[ref] = (i, items)
                load[i] += 1
                for task, _, _ in items:
                    emit("dispatch", {"path": task.path, "pid": pids[i]})
        (done,), _ = ray.wait(list(decoding) + list(scanning), num_returns=1)
        if done in decoding:
            task, windows_ref = decoding.pop(done)
            try:
                head = ray.get(done)
            except ray.exceptions.RayError:
                stats["workers_lost"] += 1
                lost(task)
                continue
            if head.skipped or head.row is not None:
                on_result(task, None if head.skipped else head.row)
            else:
                ready.append((task, head, windows_ref))
            continue
        i, items = scanning.pop(done)
        load[i] -= 1
        try:
            rows = ray.get(done)
        except ray.exceptions.RayError:
            for task, _, _ in items:
                lost(task)
            pid = _wait_for_actor(actors[i])
            stats["workers_lost"] += pid != pids[i]  # one death can fail both batches queued on the actor
            pids[i] = pid
            continue
        for (task, _, _), row in zip(items, rows):
            on_result(task, row)
    return stats

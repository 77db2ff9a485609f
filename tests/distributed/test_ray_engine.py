"""The Ray engine on a local Ray with 2 CPUs: the local engine's rows, bounded work in flight,
resume, and a killed actor. Ray's start-up is bounded; Ray is shut down after the module."""

from __future__ import annotations

import os
import signal

import pytest
from tests.distributed.conftest import SETTINGS, without_timing

from vidshield.distributed.corpus import read_rows, scan_corpus

ray = pytest.importorskip("ray")
START_TIMEOUT_S = 120


@pytest.fixture(scope="module")
def local_ray():
    if ray.is_initialized():
        pytest.skip("a Ray instance is already running in this process")

    def too_slow(signum, frame):
        raise TimeoutError(f"a local Ray did not start within {START_TIMEOUT_S} s")

    previous = signal.signal(signal.SIGALRM, too_slow)  # Ray must start in the main thread
    signal.alarm(START_TIMEOUT_S)
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    yield
    ray.shutdown()


def test_ray_rows_equal_the_local_engine_and_resume(local_ray, corpus, local_scan, tmp_path):
    in_flight = []

    def on_event(kind, info):
        if kind == "decode":
            in_flight.append(info["in_flight"])

    out = tmp_path / "scan.jsonl"
    report = scan_corpus(
        corpus, out, SETTINGS, engine="ray", workers=1, batch_size=2, max_in_flight=3, on_event=on_event
    )
    assert without_timing(read_rows(out)) == without_timing(local_scan[1])
    assert (report["scanned"], report["errors"], report["workers_lost"]) == (5, 2, 0)
    assert len(in_flight) == 5 and max(in_flight) <= 3  # never more than max_in_flight videos at once

    again = scan_corpus(corpus, out, SETTINGS, engine="ray", workers=1)
    assert (again["scanned"], again["skipped"]) == (0, 5)


def test_ray_killed_actor_loses_only_its_batch_which_is_retried(local_ray, corpus, local_scan, tmp_path):
    victim = str(corpus / "spliced.mkv")
    killed = []

    def on_event(kind, info):
        if kind == "dispatch" and info["path"] == victim and not killed:
            os.kill(info["pid"], signal.SIGKILL)
            killed.append(info["pid"])

    out = tmp_path / "scan.parquet"
    report = scan_corpus(corpus, out, SETTINGS, engine="ray", workers=1, batch_size=2, on_event=on_event)
    assert len(killed) == 1 and report["workers_lost"] == 1
    assert 1 <= report["retried"] <= 4  # the batches queued on the killed actor (2 x batch_size)
    assert without_timing(read_rows(out)) == without_timing(local_scan[1])


def test_ray_refuses_more_actors_than_the_cluster_has_cpus(local_ray, corpus, tmp_path):
    from vidshield.errors import VidshieldError

    with pytest.raises(VidshieldError, match="do not fit"):
        scan_corpus(corpus, tmp_path / "scan.jsonl", SETTINGS, engine="ray", workers=2)

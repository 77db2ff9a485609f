"""Jobs run by real worker processes: the report equals `vidshield scan --json`, the files are
right, results survive a restart, a killed worker costs only its job, the time limit holds."""

from __future__ import annotations

import io
import json
import os
import signal
import time

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image
from tests.serve.helpers import ATTACKED_FRAMES, files_under, wait_for, write_attacked_clip, write_clip

from vidshield.cli import main
from vidshield.io import read_frames, read_video
from vidshield.serve import ScanSettings, ServeConfig, create_app


def post(client, path, **data):
    with open(path, "rb") as f:
        r = client.post("/v1/scans", files={"file": (path.name, f)}, data=data)
    assert r.status_code == 202, r.text
    return r.json()["id"]


def without_timings(report: dict) -> dict:
    report = json.loads(json.dumps(report))
    for w in report["windows"]:
        del w["seconds"]
    return report


def test_the_report_and_files_are_those_of_the_scan_command(make_client, tiny_models, tmp_path, capsys):
    settings = ScanSettings(
        models={"tiny": tiny_models["lrcn"], "synthetic-lrcn": "synthetic-lrcn"}, comdefend=tiny_models["comdefend"]
    )
    client = make_client(workers=1, settings=settings)
    clip = write_clip(tmp_path / "clip.mkv")
    attacked = write_attacked_clip(tmp_path / "attacked.mkv")
    plain_id = post(client, clip)
    attacked_id = post(client, attacked, model="synthetic-lrcn")
    job = wait_for(client.get, plain_id)
    assert job["state"] == "done", job["error"]
    assert job["progress"] == {"frames_done": 20, "frames_total": 20} and job["attempts"] == 1

    cli_defended = tmp_path / "cli.mkv"
    argv = ["scan", str(clip), "--model", tiny_models["lrcn"], "--comdefend", tiny_models["comdefend"], "--json"]
    argv += ["--report", str(tmp_path / "r.json"), "--plot", str(tmp_path / "r.png"), "--defended", str(cli_defended)]
    assert main(argv) == 0
    cli = json.loads(capsys.readouterr().out)
    for key in ("report", "plot", "defended"):
        del cli[key]
    assert cli.pop("video") == str(clip) and job["report"].pop("video") == "clip.mkv"
    assert (cli.pop("model"), cli.pop("classifier")) == (tiny_models["lrcn"],) * 2
    assert (job["report"].pop("model"), job["report"].pop("classifier")) == ("tiny", "tiny")
    assert cli.pop("about").replace(tiny_models["lrcn"], "tiny") == job["report"].pop("about")
    assert without_timings(job["report"]) == without_timings(cli)

    defended = client.get(job["links"]["defended"])
    assert defended.status_code == 200 and defended.headers["content-type"] == "video/x-matroska"
    assert 'filename="clip.defended.mkv"' in defended.headers["content-disposition"]
    (tmp_path / "service.mkv").write_bytes(defended.content)
    assert torch.equal(read_video(tmp_path / "service.mkv"), read_video(cli_defended))
    labels = client.get(job["links"]["labels"])
    assert labels.status_code == 200 and labels.content[:8] == b"\x89PNG\r\n\x1a\n"
    # the input is removed once the job is done; the results stay
    assert "input.mkv" not in files_under(tmp_path / "data" / "jobs" / plain_id)

    # the crude sparse attack on the shipped model: its exception frames, thumbnails before / after
    job = wait_for(client.get, attacked_id)
    assert job["state"] == "done", job["error"]
    report = job["report"]
    assert report["verdict"] == "sparse" and report["exception_frames"] == list(ATTACKED_FRAMES)
    thumbs = job["links"]["thumbnails"]
    assert [t["frame"] for t in thumbs] == list(ATTACKED_FRAMES)
    source = read_frames(attacked)  # 64x64 = the model's view: thumbnails are the frames themselves
    (tmp_path / "attacked-defended.mkv").write_bytes(client.get(job["links"]["defended"]).content)
    rebuilt = read_frames(tmp_path / "attacked-defended.mkv")
    for t in thumbs:
        before = np.asarray(Image.open(io.BytesIO(client.get(t["before"]).content)).convert("RGB"))
        after = np.asarray(Image.open(io.BytesIO(client.get(t["after"]).content)).convert("RGB"))
        assert np.array_equal(before, source[t["frame"]]) and np.array_equal(after, rebuilt[t["frame"]])
        assert not np.array_equal(before, after)  # rebuilt by the temporal defense
    assert client.get(f"/v1/scans/{attacked_id}/frames/0/before.png").status_code == 404
    assert client.get(f"/v1/scans/{attacked_id}/frames/3/sideways.png").status_code == 422

    # finished jobs reach the counters through the supervisor thread, shortly after their state
    deadline = time.monotonic() + 20
    while "vidshield_frames_scanned_total 52.0" not in (metrics := client.get("/metrics").text):
        assert time.monotonic() < deadline, metrics
        time.sleep(0.1)
    assert 'vidshield_jobs{state="done"} 2.0' in metrics
    assert 'vidshield_job_latency_seconds_count{state="done"} 2.0' in metrics
    assert "vidshield_frames_scanned_total 52.0" in metrics

    assert client.delete(f"/v1/scans/{attacked_id}").status_code == 204
    assert not (tmp_path / "data" / "jobs" / attacked_id).exists()
    assert files_under(tmp_path / "data" / "tmp") == []


def test_a_restart_keeps_finished_results_and_resumes_queued_jobs(settings, tmp_path):
    data = tmp_path / "data"
    clip = write_clip(tmp_path / "clip.mkv")
    with TestClient(create_app(ServeConfig(data_dir=data, workers=1, settings=settings))) as client:
        done_id = post(client, clip)
        before = wait_for(client.get, done_id)
        assert before["state"] == "done"
    with TestClient(create_app(ServeConfig(data_dir=data, workers=0, settings=settings))) as client:
        queued_id = post(client, clip)  # no worker: stays queued when the service stops
        assert client.get(f"/v1/scans/{queued_id}").json()["state"] == "queued"
        assert client.get(f"/v1/scans/{done_id}").json() == before
    # a job left "running" by a service that died: queued again at the next start
    import sqlite3

    with sqlite3.connect(data / "jobs.sqlite3") as db:
        db.execute("UPDATE jobs SET state = 'running', attempts = 1, worker_pid = 1 WHERE id = ?", (queued_id,))
    with TestClient(create_app(ServeConfig(data_dir=data, workers=1, settings=settings))) as client:
        assert client.get(f"/v1/scans/{done_id}").json() == before
        resumed = wait_for(client.get, queued_id)
        assert resumed["state"] == "done" and resumed["note"] == "queued again after a restart of the service"
        assert resumed["attempts"] == 2
        assert without_timings(resumed["report"]) == without_timings(before["report"])
        assert client.get(resumed["links"]["defended"]).status_code == 200
    assert files_under(data / "tmp") == []


def test_a_killed_worker_costs_only_its_job(make_client, tmp_path):
    """kill -9 mid-job: the job is retried once, a second kill fails it with the reason, and the
    service (a new worker) goes on scanning."""
    client = make_client(workers=1)
    manager = client.app.state.manager
    long_clip = write_clip(tmp_path / "long.mkv", frames=1500)

    def kill_mid_job(job_id):
        job = wait_for(client.get, job_id, until=lambda j: j["state"] == "running" and j["progress"]["frames_done"] > 0)
        assert job["state"] == "running", job
        pid = manager.store.get(job_id)["worker_pid"]
        os.kill(pid, signal.SIGKILL)
        return pid

    job_id = post(client, long_clip)
    first = kill_mid_job(job_id)
    job = wait_for(client.get, job_id, until=lambda j: j["attempts"] == 2 and j["state"] == "running")
    assert job["note"] == "the worker scanning it died (killed by signal 9 (SIGKILL)); retried"
    second = kill_mid_job(job_id)
    assert second != first
    job = wait_for(client.get, job_id)
    assert job["state"] == "failed"
    assert job["error"] == "the worker scanning it died (killed by signal 9 (SIGKILL)) on each of 2 tries"
    assert not (tmp_path / "data" / "jobs" / job_id).exists() or files_under(tmp_path / "data" / "jobs" / job_id) == []
    # the service keeps serving: health is fine once the new worker is up, and a new job is scanned
    other = post(client, write_clip(tmp_path / "clip.mkv"))
    assert wait_for(client.get, other)["state"] == "done"
    health = client.get("/healthz").json()
    assert health["workers_alive"] == 1 and health["jobs"] == {"queued": 0, "running": 0, "done": 1, "failed": 1}


def test_a_job_over_the_time_limit_fails_and_its_worker_is_replaced(make_client, tmp_path):
    client = make_client(workers=1, job_timeout=1.0)
    manager = client.app.state.manager
    job_id = post(client, write_clip(tmp_path / "long.mkv", frames=3000))
    running = wait_for(client.get, job_id, until=lambda j: j["state"] != "queued")
    pid = manager.store.get(job_id)["worker_pid"] if running["state"] == "running" else None
    job = wait_for(client.get, job_id)
    assert job["state"] == "failed" and job["error"] == "exceeded the time limit of 1 s per job"
    assert files_under(tmp_path / "data" / "jobs" / job_id) == []
    # a new worker replaces the killed one and loads its model
    deadline = time.monotonic() + 120
    while not (manager.workers()[0]["ready"] and manager.workers()[0]["pid"] != pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert manager.workers()[0]["alive"] and manager.workers()[0]["ready"] and manager.workers()[0]["pid"] != pid
    assert client.get("/healthz").json()["workers_ready"] == 1


@pytest.fixture(autouse=True)
def _no_stray_workers():
    """Every test's workers are gone after it (the clients are closed)."""
    import multiprocessing

    yield
    deadline = time.monotonic() + 10
    while multiprocessing.active_children() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [p for p in multiprocessing.active_children() if p.name == "vidshield-worker"]

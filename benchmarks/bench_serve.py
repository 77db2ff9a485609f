"""Load run of `vidshield serve` on loopback: a bounded mix of good and bad uploads.

Starts ``vidshield serve`` (a subprocess, 127.0.0.1, a fresh data folder), then sends
``--requests`` requests from ``--concurrency`` concurrent httpx clients: valid clips (each
client then polls its job to the end), corrupt files, oversize uploads and uploads cut off
mid-body (a raw socket closed half-way on purpose: ``aborted_by_client``, which by design get
no answer). While it runs, one worker is killed by its pid in the
middle of a job. Afterwards it checks that every accepted job finished (none lost or stuck),
that only the killed worker's job was affected, and that no temporary file is left; it samples
the RSS of the server and its workers throughout.

Loopback only, bounded in count and time (``--deadline``). Example:

    python benchmarks/bench_serve.py --requests 200 --concurrency 16 --workers 2 --out results/bench-serve.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def make_inputs(folder: Path, max_upload: int) -> dict[str, list[bytes]]:
    """Upload bodies by kind: valid clips (64x64, the shipped model's view), corrupt files,
    oversize files."""
    from vidshield.data import SyntheticActions
    from vidshield.io import write_video

    ds = SyntheticActions(4, frames=32, height=64, width=64, seed=7)
    valid = []
    for i in range(4):
        video, _ = ds[i]
        if i % 2:  # every other clip: three frames per window from another clip (a crude sparse attack)
            video = video.clone()
            video[[3, 7, 11, 19, 23, 27]] = ds[(i + 1) % 4][0][[3, 7, 11, 19, 23, 27]]
        valid.append(write_video(folder / f"clip{i}.mkv", video, fps=25.0).read_bytes())
    rng = random.Random(0)
    corrupt = [
        rng.randbytes(50_000),  # noise
        valid[0][: len(valid[0]) // 2],  # truncated
        b"\x1a\x45\xdf\xa3" + rng.randbytes(20_000),  # a Matroska magic, then noise
        b"hello, not a video\n" * 100,
    ]
    oversize = [rng.randbytes(max_upload + 200_000)]
    return {"valid": valid, "corrupt": corrupt, "oversize": oversize}


class RssSampler(threading.Thread):
    """Samples the RSS (MB) of a process and its children every 0.25 s."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.stop = pid, threading.Event()
        self.peak_server = self.peak_worker = self.peak_total = 0.0
        self.server_first = self.server_last = None

    @staticmethod
    def rss(pid: int) -> float:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return 0.0

    @staticmethod
    def children(pid: int) -> list[int]:
        out = []
        for task in Path(f"/proc/{pid}/task").glob("*"):
            with contextlib.suppress(OSError):
                out += [int(c) for c in (task / "children").read_text().split()]
        return out

    def run(self):
        while not self.stop.wait(0.25):
            server = self.rss(self.pid)
            workers = [self.rss(c) for c in self.children(self.pid)]
            self.server_first = self.server_first or server
            self.server_last = server
            self.peak_server = max(self.peak_server, server)
            self.peak_worker = max([self.peak_worker, *workers])
            self.peak_total = max(self.peak_total, server + sum(workers))


async def disconnect_mid_upload(port: int, body: bytes) -> str:
    """Send half a multipart upload on a raw socket and close it."""
    boundary = "cutoff"
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="cut.mkv"\r\n\r\n'.encode()
    total = len(head) + len(body) + len(f"\r\n--{boundary}--\r\n")
    _, writer = await asyncio.open_connection(HOST, port)
    writer.write(
        (
            f"POST /v1/scans HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: multipart/form-data; boundary={boundary}\r\n"
            f"Content-Length: {total}\r\n\r\n"
        ).encode()
        + head
        + body[: len(body) // 2]
    )
    await writer.drain()
    await asyncio.sleep(0.05)
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return "aborted_by_client"


async def run_load(args, port: int, inputs: dict, data_dir: Path) -> dict:
    rng = random.Random(args.seed)
    kinds = rng.choices(["valid", "corrupt", "oversize", "disconnect"], weights=[50, 20, 15, 15], k=args.requests)
    queue: asyncio.Queue = asyncio.Queue()
    for i, kind in enumerate(kinds):
        queue.put_nowait((i, kind))
    results: list[dict] = []
    latencies: list[float] = []  # every HTTP upload request, retries included
    deadline = time.monotonic() + args.deadline
    killed: dict = {}
    base = f"http://{HOST}:{port}"

    async def kill_one_worker_mid_job():
        """Once jobs are flowing, kill -9 the worker of a running job that has made progress."""
        while time.monotonic() < deadline and not killed:
            await asyncio.sleep(0.1)
            done = sum(1 for r in results if r.get("state") == "done")
            if done < 5:
                continue
            with sqlite3.connect(f"file:{data_dir / 'jobs.sqlite3'}?mode=ro", uri=True) as db:
                row = db.execute(
                    "SELECT id, worker_pid FROM jobs WHERE state = 'running' AND frames_done > 0 LIMIT 1"
                ).fetchone()
            if row:
                os.kill(row[1], signal.SIGKILL)
                killed.update(job=row[0], pid=row[1], at=time.time())

    async def client_loop(client: httpx.AsyncClient):
        while time.monotonic() < deadline:
            try:
                i, kind = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            t0 = time.perf_counter()
            rec = {"i": i, "kind": kind}
            try:
                if kind == "disconnect":
                    await disconnect_mid_upload(port, inputs["valid"][i % len(inputs["valid"])])
                    rec["status"] = "aborted_by_client"
                else:
                    body = rng.choice(inputs["oversize" if kind == "oversize" else kind])
                    for _ in range(args.max_retries + 1):  # a polite client: 429 -> wait Retry-After, again
                        t_req = time.perf_counter()
                        r = await client.post("/v1/scans", files={"file": (f"{kind}-{i}.mkv", body)})
                        latencies.append(time.perf_counter() - t_req)
                        if r.status_code != 429 or time.monotonic() > deadline:
                            break
                        rec["retries_429"] = rec.get("retries_429", 0) + 1
                        await asyncio.sleep(min(float(r.headers["retry-after"]), 5.0))
                    rec["status"] = r.status_code
                    rec["detail"] = r.json().get("detail") if r.status_code != 202 else None
                    rec["latency"] = time.perf_counter() - t0
                    if r.status_code == 202:
                        job_id = r.json()["id"]
                        rec["job"] = job_id
                        while time.monotonic() < deadline:
                            await asyncio.sleep(0.2)
                            g = await client.get(f"/v1/scans/{job_id}")
                            if g.status_code >= 500:
                                rec.setdefault("poll_5xx", 0)
                                rec["poll_5xx"] += 1
                                continue
                            job = g.json()
                            if job["state"] in ("done", "failed"):
                                rec["state"] = job["state"]
                                rec["error"] = job["error"]
                                rec["job_latency"] = time.perf_counter() - t0
                                break
                        else:
                            rec["state"] = "stuck"
            except httpx.HTTPError as e:
                rec["status"] = f"client error: {type(e).__name__}: {e}"
            rec.setdefault("latency", time.perf_counter() - t0)
            results.append(rec)

    t_start = time.perf_counter()
    limits = httpx.Limits(max_connections=args.concurrency)
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as client:
        killer = asyncio.create_task(kill_one_worker_mid_job())
        await asyncio.gather(*(client_loop(client) for _ in range(args.concurrency)))
        killer.cancel()
    wall = time.perf_counter() - t_start
    return {"results": results, "wall": wall, "killed": killed, "latencies": latencies}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=200)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--queue-size", type=int, default=8)
    p.add_argument("--max-upload-mb", type=float, default=1.0)
    p.add_argument("--deadline", type=float, default=600, help="seconds; no request starts after it")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-retries", type=int, default=30, help="429 answers a client waits out per upload")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    data_dir = work / "data"
    max_upload = int(args.max_upload_mb * 1024 * 1024)
    inputs = make_inputs(work, max_upload)
    port = free_port()
    cmd = [
        sys.executable, "-m", "vidshield", "serve", "--host", HOST, "--port", str(port), "--data", str(data_dir),
        "--workers", str(args.workers), "--queue-size", str(args.queue_size), "--max-upload-mb", str(args.max_upload_mb),
        "--model", "synthetic-lrcn",  # the model results/bench-serve.json was measured with (the default is ut-lrcn)
    ]  # fmt: skip
    log = open(work / "server.log", "w")  # noqa: SIM115 (closed after the server stops)
    server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    sampler = RssSampler(server.pid)
    try:
        t0 = time.monotonic()
        while True:  # ready: every worker has its model loaded
            try:
                h = httpx.get(f"http://{HOST}:{port}/healthz", timeout=2).json()
                if h["workers_ready"] == args.workers:
                    break
            except (httpx.HTTPError, ValueError):
                pass
            if time.monotonic() - t0 > 120 or server.poll() is not None:
                raise SystemExit(f"the server did not come up; see {work / 'server.log'}")
            time.sleep(0.2)
        startup = time.monotonic() - t0
        sampler.start()
        run = asyncio.run(run_load(args, port, inputs, data_dir))
        # afterwards: the queue drains; every accepted job is finished
        t_drain = time.monotonic()
        while time.monotonic() - t_drain < 120:
            jobs = httpx.get(f"http://{HOST}:{port}/healthz").json()["jobs"]
            if jobs["queued"] == 0 and jobs["running"] == 0:
                break
            time.sleep(0.2)
        metrics = httpx.get(f"http://{HOST}:{port}/metrics").text
        health = httpx.get(f"http://{HOST}:{port}/healthz").json()
    finally:
        sampler.stop.set()
        server.send_signal(signal.SIGINT)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()

    results, killed = run["results"], run["killed"]
    with sqlite3.connect(data_dir / "jobs.sqlite3") as db:
        db.row_factory = sqlite3.Row
        rows = {r["id"]: dict(r) for r in db.execute("SELECT id, state, attempts, error, note FROM jobs")}
    accepted = [r for r in results if r.get("job")]
    lost = [r["job"] for r in accepted if r["job"] not in rows]
    stuck = [r["job"] for r in accepted if r.get("state") not in ("done", "failed")]
    failed_valid = [r for r in accepted if r.get("state") == "failed" and r["job"] != killed.get("job")]
    killed_job = rows.get(killed.get("job"), {})
    leftovers = [
        str(p.relative_to(data_dir))
        for p in data_dir.rglob("*")
        if p.is_file() and (p.parent == data_dir / "tmp" or p.name.startswith("input") or p.suffix in (".tmp", ".part"))
    ]
    statuses: dict[str, int] = {}
    for r in results:
        statuses[str(r["status"])] = statuses.get(str(r["status"]), 0) + 1
    http = run["latencies"]
    job_lat = [r["job_latency"] for r in accepted if r.get("state") == "done"]
    q = lambda xs, f: round(statistics.quantiles(xs, n=100)[f - 1], 3) if len(xs) >= 2 else None  # noqa: E731
    five_xx = sum(1 for r in results if isinstance(r["status"], int) and r["status"] >= 500)
    five_xx += sum(r.get("poll_5xx", 0) for r in results)
    summary = {
        "command": "python benchmarks/bench_serve.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "server": " ".join(cmd[1:]),
        "machine": f"{os.cpu_count()} CPU cores (shared), loopback",
        "requests": len(results),
        "requests_planned": args.requests,
        "concurrency": args.concurrency,
        "workers": args.workers,
        "wall_seconds": round(run["wall"], 2),
        "startup_seconds": round(startup, 2),
        "statuses": dict(sorted(statuses.items())),
        "answers_429_then_retried": sum(r.get("retries_429", 0) for r in results),
        "http_requests": len(run["latencies"]) + statuses.get("aborted_by_client", 0),
        # requests the client sent whole that got no HTTP answer (a connection error): must be 0
        "unanswered": sum(1 for r in results if str(r["status"]).startswith("client error")),
        "accepted_upload_latency_p95_s": q([r["latency"] for r in accepted], 95),
        "http_latency_p50_s": q(http, 50),
        "http_latency_p95_s": q(http, 95),
        "job_latency_p50_s": q(job_lat, 50),
        "job_latency_p95_s": q(job_lat, 95),
        "jobs_accepted": len(accepted),
        "jobs_done": len(job_lat),
        "jobs_per_second": round(len(job_lat) / run["wall"], 3),
        "count_5xx": five_xx,
        "lost_jobs": lost,
        "stuck_jobs": stuck,
        "failed_jobs_other_than_the_killed_one": [(r["job"], r.get("error")) for r in failed_valid],
        "killed_worker": {
            **killed,
            "job_state": killed_job.get("state"),
            "job_attempts": killed_job.get("attempts"),
            "job_note": killed_job.get("note"),
            "job_error": killed_job.get("error"),
        },
        "temp_files_left": leftovers,
        "rss_mb": {
            "server_start": round(sampler.server_first or 0, 1),
            "server_end": round(sampler.server_last or 0, 1),
            "server_peak": round(sampler.peak_server, 1),
            "worker_peak": round(sampler.peak_worker, 1),
            "total_peak": round(sampler.peak_total, 1),
        },
        "rejections": sorted({f"{r['status']}: {r['detail']}" for r in results if r.get("detail")}),
        "health_after": health,
        "metrics_after": [
            line for line in metrics.splitlines() if line.startswith(("vidshield_jobs{", "vidshield_frames_per_second"))
        ],
        "tracebacks_in_server_log": (work / "server.log").read_text().count("Traceback"),
    }
    summary["goal_met"] = (
        five_xx == 0
        and summary["unanswered"] == 0
        and not lost
        and not stuck
        and not failed_valid
        and not leftovers
        and killed_job.get("state") in ("done", "failed")
    )
    text = json.dumps(summary, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return 0 if summary["goal_met"] else 1


if __name__ == "__main__":
    sys.exit(main())

"""Jobs: a SQLite store (WAL) and a pool of worker processes that scan.

The database is the queue. A worker process claims the oldest queued job in one transaction
(recording its pid), scans it with :func:`vidshield.serve.scanning.run_scan`, and writes the
report; it loads each model once and keeps it. The supervisor (a thread of the server process)
restarts workers that exit, and:

- a worker that dies while scanning (crash, OOM kill, ``kill -9``) puts its job back in the queue
  once (``max_attempts`` = 2); the second death marks it failed with the reason;
- a job running longer than the time limit has its worker killed and is marked failed;
- after a restart of the service, finished jobs keep their results, queued jobs run, and jobs
  that were running are queued again (counted as an attempt).

Folders: ``DATA/tmp/`` holds uploads being received (removed on every path), ``DATA/jobs/ID/``
a job's input (removed once the job is finished), label plot, defended video and thumbnails.
Job ids are 32 random hex digits made here; no name a client sends becomes a path.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import secrets
import shutil
import signal
import sqlite3
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from vidshield.errors import VidshieldError
from vidshield.jsonio import parse_json
from vidshield.serve.scanning import ScanSettings

__all__ = ["JobStore", "JobManager", "ManagerConfig", "QueueFull", "StoreError", "STATES", "job_json", "valid_job_id"]

STATES = ("queued", "running", "done", "failed")
_ID = re.compile(r"^[0-9a-f]{32}$")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    name TEXT NOT NULL,
    input TEXT NOT NULL,
    size INTEGER NOT NULL,
    options TEXT NOT NULL,
    info TEXT NOT NULL,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    worker_pid INTEGER,
    frames_done INTEGER NOT NULL DEFAULT 0,
    frames_total INTEGER NOT NULL,
    error TEXT,
    note TEXT,
    report TEXT,
    files TEXT
);
CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs (state, created);
"""


def valid_job_id(job_id: str) -> bool:
    """A job id is exactly 32 lowercase hex digits (made by the server)."""
    return bool(_ID.match(job_id))


class StoreError(VidshieldError):
    """A job row of the database that does not hold what the service wrote there."""


def job_json(job: dict, column: str) -> dict:
    """A JSON column of a job row (``options``, ``info``, ``report``, ``files``), parsed with the
    bounds of :func:`vidshield.jsonio.parse_json`: the database is a file on disk, read again after
    a restart.

    Raises:
        StoreError: not a JSON object within those bounds.
    """
    return parse_json(job[column] or "", what=f"job {job['id']}: {column}", expect=dict, error=StoreError)


class QueueFull(Exception):
    """The queue holds its maximum number of jobs; ``retry_after`` is a guess in seconds."""

    def __init__(self, retry_after: int):
        self.retry_after = retry_after
        super().__init__(f"the queue is full; retry after {retry_after} s")


class JobStore:
    """The jobs table. One connection per store, serialised by a lock (usable from threads)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _one(self, sql: str, args=()) -> dict | None:
        with self._lock:
            row = self._db.execute(sql, args).fetchone()
        return dict(row) if row else None

    def _all(self, sql: str, args=()) -> list[dict]:
        with self._lock:
            return [dict(r) for r in self._db.execute(sql, args).fetchall()]

    def _run(self, sql: str, args=()) -> int:
        with self._lock:
            return self._db.execute(sql, args).rowcount

    def insert(self, job: dict, max_queued: int) -> bool:
        """Add a queued job unless ``max_queued`` jobs are already queued (atomically)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                (queued,) = self._db.execute("SELECT COUNT(*) FROM jobs WHERE state = 'queued'").fetchone()
                if queued >= max_queued:
                    self._db.execute("ROLLBACK")
                    return False
                cols = ", ".join(job)
                marks = ", ".join("?" for _ in job)
                self._db.execute(f"INSERT INTO jobs ({cols}) VALUES ({marks})", tuple(job.values()))
                self._db.execute("COMMIT")
                return True
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def get(self, job_id: str) -> dict | None:
        return self._one("SELECT * FROM jobs WHERE id = ?", (job_id,))

    def recent(self, limit: int) -> list[dict]:
        return self._all(
            "SELECT id, state, name, created, finished, frames_done, frames_total, error, "
            "json_extract(report, '$.verdict') AS verdict FROM jobs ORDER BY created DESC LIMIT ?",
            (limit,),
        )

    def counts(self) -> dict[str, int]:
        rows = self._all("SELECT state, COUNT(*) AS n FROM jobs GROUP BY state")
        counts = dict.fromkeys(STATES, 0)
        counts.update({r["state"]: r["n"] for r in rows})
        return counts

    def claim(self, pid: int) -> dict | None:
        """Mark the oldest queued job running for worker ``pid`` and return it (None if none)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute("SELECT id FROM jobs WHERE state = 'queued' ORDER BY created LIMIT 1").fetchone()
                if row is None:
                    self._db.execute("COMMIT")
                    return None
                self._db.execute(
                    "UPDATE jobs SET state = 'running', worker_pid = ?, started = ?, frames_done = 0, "
                    "attempts = attempts + 1 WHERE id = ?",
                    (pid, time.time(), row["id"]),
                )
                job = dict(self._db.execute("SELECT * FROM jobs WHERE id = ?", (row["id"],)).fetchone())
                self._db.execute("COMMIT")
                return job
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def progress(self, job_id: str, pid: int, done: int) -> None:
        self._run(
            "UPDATE jobs SET frames_done = ? WHERE id = ? AND state = 'running' AND worker_pid = ?", (done, job_id, pid)
        )

    def finish(self, job_id: str, pid: int, report: dict, files: dict) -> bool:
        """Record a finished scan (only if this worker still owns the job)."""
        return bool(
            self._run(
                "UPDATE jobs SET state = 'done', finished = ?, frames_done = frames_total, report = ?, files = ?, "
                "worker_pid = NULL WHERE id = ? AND state = 'running' AND worker_pid = ?",
                (time.time(), json.dumps(report), json.dumps(files), job_id, pid),
            )
        )

    def fail(self, job_id: str, reason: str, *, pid: int | None = None) -> bool:
        """Mark a queued or running job failed (only the owning worker's, when ``pid`` is given)."""
        sql = "UPDATE jobs SET state = 'failed', finished = ?, error = ?, worker_pid = NULL WHERE id = ? AND state IN ('queued', 'running')"
        args: tuple = (time.time(), reason, job_id)
        if pid is not None:
            sql += " AND worker_pid = ?"
            args += (pid,)
        return bool(self._run(sql, args))

    def requeue(self, job_id: str, note: str) -> bool:
        return bool(
            self._run(
                "UPDATE jobs SET state = 'queued', worker_pid = NULL, started = NULL, frames_done = 0, note = ? "
                "WHERE id = ? AND state = 'running'",
                (note, job_id),
            )
        )

    def delete(self, job_id: str, state: str) -> bool:
        return bool(self._run("DELETE FROM jobs WHERE id = ? AND state = ?", (job_id, state)))

    def running(self) -> list[dict]:
        return self._all("SELECT id, worker_pid, started, attempts FROM jobs WHERE state = 'running'")

    def finished_since(self, since: float) -> list[dict]:
        return self._all(
            "SELECT state, created, started, finished, frames_total FROM jobs "
            "WHERE finished > ? AND state IN ('done', 'failed') ORDER BY finished",
            (since,),
        )

    def throughput(self, window_s: float) -> tuple[int, float]:
        """(frames, seconds of scanning) of the jobs done in the last ``window_s`` seconds."""
        row = self._one(
            "SELECT COALESCE(SUM(frames_total), 0) AS frames, COALESCE(SUM(finished - started), 0) AS seconds "
            "FROM jobs WHERE state = 'done' AND finished > ?",
            (time.time() - window_s,),
        )
        return int(row["frames"]), float(row["seconds"])

    def mean_run_seconds(self, last: int = 20) -> float | None:
        row = self._one(
            "SELECT AVG(finished - started) AS s FROM (SELECT finished, started FROM jobs WHERE state = 'done' "
            "ORDER BY finished DESC LIMIT ?)",
            (last,),
        )
        return row["s"] if row and row["s"] is not None else None

    def ids(self) -> set[str]:
        return {r["id"] for r in self._all("SELECT id FROM jobs")}


@dataclass(frozen=True)
class ManagerConfig:
    """How the job manager runs.

    Attributes:
        data_dir: the service's folder (database, uploads, results).
        workers: worker processes (0: accept jobs but run none, for tests and maintenance).
        queue_size: queued jobs at most (more: 429).
        job_timeout: seconds a job may run before its worker is killed and the job failed.
        max_attempts: runs of one job whose worker died (2: retried once).
        threads: torch intra-op threads per worker.
        settings: models and defenses the workers load.
    """

    data_dir: Path
    workers: int = 1
    queue_size: int = 16
    job_timeout: float = 600.0
    max_attempts: int = 2
    threads: int = 1
    settings: ScanSettings = field(default_factory=ScanSettings)

    @property
    def db_path(self) -> Path:
        return self.data_dir / "jobs.sqlite3"

    @property
    def tmp_dir(self) -> Path:
        return self.data_dir / "tmp"

    @property
    def jobs_dir(self) -> Path:
        return self.data_dir / "jobs"


class _Slot:
    def __init__(self):
        self.process = None
        self.ready = None
        self.started = 0.0


class JobManager:
    """The store, the worker processes and their supervisor.

    Use ``start()`` / ``stop()`` (the app's lifespan does). ``lock`` serialises the supervisor's
    rounds with deletions, so a job is never deleted while its worker is being replaced.
    """

    def __init__(self, config: ManagerConfig, *, on_finished=None):
        self.config = config
        self.store: JobStore | None = None
        self.lock = threading.RLock()
        self._slots = [_Slot() for _ in range(config.workers)]
        self._ctx = multiprocessing.get_context("spawn")
        self._stop = threading.Event()
        self._worker_stop = None
        self._thread = None
        self._seen_until = 0.0
        self._on_finished = on_finished  # called with each newly finished job row (metrics)

    # -- life cycle -----------------------------------------------------------------------

    def start(self) -> None:
        c = self.config
        for d in (c.data_dir, c.tmp_dir, c.jobs_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.store = JobStore(c.db_path)
        self._recover()
        self._seen_until = time.time()
        self._worker_stop = self._ctx.Event()
        for slot in self._slots:
            self._spawn(slot)
        self._thread = threading.Thread(target=self._supervise, name="vidshield-supervisor", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._worker_stop is not None:
            self._worker_stop.set()
        deadline = time.monotonic() + timeout
        for slot in self._slots:
            if slot.process is not None:
                slot.process.join(max(0.1, deadline - time.monotonic()))
                if slot.process.is_alive():
                    slot.process.kill()
                    slot.process.join(5)
        if self.store is not None:
            # a job cut short by the stop runs again at the next start (see _recover)
            self.store.close()

    def _recover(self) -> None:
        """After a restart: re-queue (or fail) jobs that were running, drop stray files."""
        store, c = self.store, self.config
        for job in store.running():
            if job["attempts"] < c.max_attempts:
                self._clear(job["id"], keep_input=True)
                store.requeue(job["id"], "queued again after a restart of the service")
            else:
                self._clear(job["id"], keep_input=False)
                store.fail(job["id"], "the service stopped while this job was running (twice)")
        for p in c.tmp_dir.iterdir():
            _remove(p)
        known = store.ids()
        for p in c.jobs_dir.iterdir():
            if p.name not in known:
                _remove(p)

    # -- requests ---------------------------------------------------------------------------

    def submit(self, upload: Path, *, name: str, suffix: str, size: int, options: dict, info: dict) -> str:
        """Move a checked upload into a new job folder and queue it; returns the job id.

        Raises:
            QueueFull: the queue is full (the upload is removed).
        """
        job_id = secrets.token_hex(16)
        folder = self.config.jobs_dir / job_id
        folder.mkdir()
        input_name = "input" + suffix
        try:
            os.replace(upload, folder / input_name)
            job = dict(
                id=job_id,
                state="queued",
                name=name,
                input=input_name,
                size=size,
                options=json.dumps(options),
                info=json.dumps(info),
                created=time.time(),
                frames_total=int(info["num_frames"]),
            )
            if not self.store.insert(job, self.config.queue_size):
                raise QueueFull(self.retry_after())
        except BaseException:
            _remove(folder)
            raise
        return job_id

    def queue_full(self) -> bool:
        return self.store.counts()["queued"] >= self.config.queue_size

    def retry_after(self) -> int:
        """Seconds until a queue slot probably frees: mean run time x queued jobs / workers."""
        mean = self.store.mean_run_seconds() or 5.0
        queued = self.store.counts()["queued"]
        return int(min(600, max(1, round(mean * max(1, queued) / max(1, self.config.workers)))))

    def delete(self, job_id: str) -> bool:
        """Remove a job and its files; a running job's worker is killed (and restarted)."""
        with self.lock:
            while True:
                job = self.store.get(job_id)
                if job is None:
                    return False
                if job["state"] == "running":
                    slot = self._slot_of(job["worker_pid"])
                    if slot is not None:
                        slot.process.kill()
                        slot.process.join(10)
                if self.store.delete(job_id, job["state"]):  # else a worker claimed it just now: again
                    _remove(self.config.jobs_dir / job_id)
                    return True

    def job_dir(self, job_id: str) -> Path:
        if not valid_job_id(job_id):
            raise ValueError("not a job id")
        return self.config.jobs_dir / job_id

    def workers(self) -> list[dict]:
        """Each worker slot: pid, alive, model loaded."""
        return [
            {
                "pid": s.process.pid if s.process else None,
                "alive": bool(s.process and s.process.is_alive()),
                "ready": bool(s.ready and s.ready.is_set()),
            }
            for s in self._slots
        ]

    # -- supervision ------------------------------------------------------------------------

    def _spawn(self, slot: _Slot) -> None:
        slot.ready = self._ctx.Event()
        slot.process = self._ctx.Process(
            target=worker_main,
            args=(
                str(self.config.db_path),
                str(self.config.jobs_dir),
                self.config.settings.to_dict(),
                self.config.threads,
                self._worker_stop,
                slot.ready,
            ),
            name="vidshield-worker",
            daemon=True,
        )
        slot.process.start()
        slot.started = time.monotonic()

    def _slot_of(self, pid: int) -> _Slot | None:
        return next((s for s in self._slots if s.process is not None and s.process.pid == pid), None)

    def _supervise(self) -> None:
        while not self._stop.wait(0.2):
            try:
                with self.lock:
                    self._check_workers()
                    self._check_timeouts()
                self._observe_finished()
            except Exception:  # the supervisor must outlive any one bad round
                traceback.print_exc()

    def _check_workers(self) -> None:
        for slot in self._slots:
            p = slot.process
            if p is None or p.is_alive():
                continue
            p.join()
            why = _exit_reason(p.exitcode)
            for job in self.store.running():
                if job["worker_pid"] != p.pid:
                    continue
                # files first: once the state changes, a client may look (and a worker may take it)
                if job["attempts"] < self.config.max_attempts:
                    self._clear(job["id"], keep_input=True)
                    self.store.requeue(job["id"], f"the worker scanning it died ({why}); retried")
                else:
                    self._clear(job["id"], keep_input=False)
                    self.store.fail(
                        job["id"], f"the worker scanning it died ({why}) on each of {job['attempts']} tries"
                    )
            if time.monotonic() - slot.started < 1.0:
                time.sleep(1.0)  # a worker that dies at once: do not restart it in a tight loop
            if not self._stop.is_set():
                self._spawn(slot)

    def _check_timeouts(self) -> None:
        limit = self.config.job_timeout
        now = time.time()
        for job in self.store.running():
            if job["started"] is None or now - job["started"] <= limit:
                continue
            slot = self._slot_of(job["worker_pid"])
            if slot is not None:
                slot.process.kill()
                slot.process.join(10)
            self._clear(job["id"], keep_input=False)  # before the state says so: a client may look at once
            self.store.fail(job["id"], f"exceeded the time limit of {limit:g} s per job")

    def _observe_finished(self) -> None:
        for job in self.store.finished_since(self._seen_until):
            self._seen_until = max(self._seen_until, job["finished"])
            if self._on_finished is not None:
                self._on_finished(job)

    def _clear(self, job_id: str, *, keep_input: bool) -> None:
        """Remove a job's outputs (and its input unless ``keep_input``)."""
        folder = self.config.jobs_dir / job_id
        if not folder.is_dir():
            return
        for p in folder.iterdir():
            if not (keep_input and p.name.startswith("input")):
                _remove(p)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _exit_reason(code: int | None) -> str:
    if code is None:
        return "unknown exit"
    if code < 0:
        try:
            return f"killed by signal {-code} ({signal.Signals(-code).name})"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


# -- the worker process -----------------------------------------------------------------------


def worker_main(db_path: str, jobs_dir: str, settings: dict, threads: int, stop, ready) -> None:
    """A worker process: load the default model, then claim and scan jobs until told to stop or
    the server process is gone."""
    import torch

    from vidshield.serve.scanning import PipelineCache, ScanOptions

    torch.set_num_threads(threads)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the server, which stops us
    store = JobStore(db_path)
    cache = PipelineCache(ScanSettings.from_dict(settings))
    try:
        cache.get(ScanOptions(model=next(iter(cache.settings.models))))
    except Exception:
        traceback.print_exc()  # jobs will fail with the reason; the worker stays up
    ready.set()
    parent = multiprocessing.parent_process()
    pid = os.getpid()
    while not stop.is_set() and (parent is None or parent.is_alive()):
        job = store.claim(pid)
        if job is None:
            stop.wait(0.1)
            continue
        _run_job(store, cache, Path(jobs_dir), job, pid)
    store.close()


def _run_job(store: JobStore, cache, jobs_dir: Path, job: dict, pid: int) -> None:
    from vidshield.errors import VidshieldError
    from vidshield.serve.scanning import ScanOptions, run_scan

    folder = jobs_dir / job["id"]
    last = [0.0]

    def progress(done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] >= 0.2 or done >= total:
            last[0] = now
            store.progress(job["id"], pid, done)

    try:
        out = run_scan(
            folder / job["input"],
            ScanOptions(**job_json(job, "options")),
            folder,
            pipelines=cache,
            name=job["name"],
            total_frames=job["frames_total"],
            progress=progress,
        )
    except (VidshieldError, ValueError) as e:
        store.fail(job["id"], " ".join(str(e).split()), pid=pid)
        _clear_all(folder)
        return
    except Exception as e:
        traceback.print_exc(file=sys.stderr)
        store.fail(job["id"], f"internal error: {type(e).__name__}: {' '.join(str(e).split())}", pid=pid)
        _clear_all(folder)
        return
    files = {
        "labels": out.labels_png.name if out.labels_png else None,
        "defended": out.defended.name if out.defended else None,
        "thumbnails": {str(t): sorted(v) for t, v in out.thumbnails.items()},
    }
    if store.finish(job["id"], pid, out.report, files):
        (folder / job["input"]).unlink(missing_ok=True)


def _clear_all(folder: Path) -> None:
    if folder.is_dir():
        for p in folder.iterdir():
            _remove(p)

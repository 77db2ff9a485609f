"""Run ``vidshield scan`` on many files, each in its own forked process with a time bound.

``python -m tests.io.fuzz_runner JOB.json RESULT.json``: JOB holds ``files`` (paths as hex of
their bytes, so names need not be UTF-8), ``args`` (extra scan options), ``timeout`` (seconds
per file) and ``cwd``. The parent imports vidshield once; every file then runs in a fork that
calls the console entry point as ``vidshield scan FILE ARGS`` would (stdout discarded, stderr
kept), so each run has its own process, exit status and stderr, without paying for the imports
each time. RESULT lists ``rc`` (None on a timeout), ``stderr`` and ``seconds`` per file.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
import time


def _child(path: str, args: list[str], err_fd: int) -> None:
    import torch

    from vidshield.cli import main

    torch.set_num_threads(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(err_fd, 2)
    sys.argv = ["vidshield", "scan", path, *args]
    rc = 1
    try:
        rc = main(sys.argv[1:])
    except SystemExit as e:
        rc = e.code if isinstance(e.code, int) else 1
    except BaseException:
        import traceback

        traceback.print_exc()
        rc = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(rc)


def run(files: list[str], args: list[str], timeout: float) -> list[dict]:
    import matplotlib.figure  # noqa: F401  (imported once in the parent, like torch and PyAV)
    import torch  # noqa: F401

    import vidshield.cli.scan
    import vidshield.pipeline  # noqa: F401

    results = []
    for path in files:
        with tempfile.TemporaryFile() as err:
            t0 = time.perf_counter()
            pid = os.fork()
            if pid == 0:
                _child(path, args, err.fileno())
            rc = None
            while time.perf_counter() - t0 < timeout:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    rc = os.waitstatus_to_exitcode(status)
                    break
                time.sleep(0.01)
            else:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            seconds = time.perf_counter() - t0
            err.seek(0)
            stderr = err.read().decode("utf-8", "replace")
        results.append({"file": path, "rc": rc, "stderr": stderr, "seconds": round(seconds, 3)})
    return results


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        job = json.load(f)
    os.chdir(job["cwd"])
    files = [os.fsdecode(bytes.fromhex(h)) for h in job["files"]]
    out = run(files, job["args"], job["timeout"])
    for row in out:
        row["file"] = os.fsencode(row["file"]).hex()
    with open(sys.argv[2], "w") as f:
        json.dump(out, f)

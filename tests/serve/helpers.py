"""Helpers for the service tests: clips, tiny models, polling, a live server on loopback."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import torch

from vidshield.data import SyntheticActions
from vidshield.io import write_video

# Frames replaced by another class's frames in :func:`write_attacked_clip`: three per 16-frame
# window, so alpha = 3/16 = 0.1875 >= gamma1 (0.175) when the shipped detector sees them.
ATTACKED_FRAMES = (3, 7, 11, 19, 23, 27)


def write_clip(path, *, frames: int = 20, size: int = 32, seed: int = 3) -> Path:
    """A synthetic clip (FFV1 .mkv); longer clips repeat a 20-frame one."""
    video, _ = SyntheticActions(1, frames=min(frames, 20), height=size, width=size, seed=seed)[0]
    if frames > video.shape[0]:
        video = video.repeat(-(-frames // video.shape[0]), 1, 1, 1)[:frames]
    return write_video(path, video, fps=25.0)


def write_attacked_clip(path) -> Path:
    """32 frames (64x64, the shipped synthetic-lrcn's view) of one class with the frames in
    :data:`ATTACKED_FRAMES` taken from a clip of another class: a crude sparse attack."""
    ds = SyntheticActions(2, frames=32, height=64, width=64, seed=1)
    (a, _), (b, _) = ds[0], ds[1]
    video = a.clone()
    video[list(ATTACKED_FRAMES)] = b[list(ATTACKED_FRAMES)]
    return write_video(path, video, fps=25.0)


def make_tiny_models(root: Path) -> dict[str, str]:
    """An untrained test-lrcn (10 classes) and a random ComDefend, saved as checkpoints."""
    from vidshield.checkpoint import save_checkpoint
    from vidshield.defenses.spatial import ComDefend
    from vidshield.defenses.spatial.comdefend import ARCHITECTURE
    from vidshield.models import create_model, save_model

    torch.manual_seed(0)
    lrcn = save_model(create_model("test-lrcn", num_classes=10), root / "lrcn")
    comdefend = save_checkpoint(root / "comdefend", ComDefend().state_dict(), {"architecture": ARCHITECTURE})
    return {"lrcn": str(lrcn), "comdefend": str(comdefend)}


def wait_for(get, job_id: str, states=("done", "failed"), *, timeout: float = 120.0, until=None) -> dict:
    """Poll ``get(url)`` (a test client's or httpx's) until the job reaches one of ``states``
    (or ``until(job)`` holds); returns the job JSON."""
    deadline = time.monotonic() + timeout
    while True:
        job = get(f"/v1/scans/{job_id}").json()
        if (until(job) if until is not None else job["state"] in states) or time.monotonic() > deadline:
            return job
        time.sleep(0.05)


def files_under(folder: Path) -> list[str]:
    """Every file under ``folder``, relative, sorted."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """The app on uvicorn in a thread, on 127.0.0.1 (a context manager; ``url`` is the base)."""

    def __init__(self, app):
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(30)

"""Screenshot of the service's page for docs/serve.png.

Starts ``vidshield serve`` on loopback (shipped synthetic-lrcn, one worker, a temporary data
folder), uploads a clean synthetic clip and a crudely attacked one (three frames per window taken
from another clip), opens the page at the attacked clip's result in Debian's headless chromium
(Playwright) and saves a PNG. Run from the repository root:

    python scripts/serve_screenshot.py docs/serve.png
"""

from __future__ import annotations

import io
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from PIL import Image
from playwright.sync_api import sync_playwright

from vidshield.data import SyntheticActions
from vidshield.io import write_video


def clips(folder: Path) -> list[Path]:
    ds = SyntheticActions(3, frames=48, height=64, width=64, seed=1)
    clean = write_video(folder / "walk-clean.mkv", ds[2][0], fps=25.0)
    video, other = ds[0][0].clone(), ds[1][0]
    frames = [3, 7, 11, 19, 23, 27]
    video[frames] = other[frames]
    return [clean, write_video(folder / "camera-7-attacked.mkv", video, fps=25.0)]


def main(out: str) -> None:
    work = Path(tempfile.mkdtemp(prefix="serve-shot-"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "vidshield", "serve", "--port", str(port), "--data", str(work / "data")]
    server = subprocess.Popen(cmd)
    try:
        for _ in range(600):
            try:
                if httpx.get(base + "/healthz").json()["workers_ready"] == 1:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        ids = []
        for clip in clips(work):
            with open(clip, "rb") as f:
                ids.append(httpx.post(base + "/v1/scans", files={"file": (clip.name, f)}).json()["id"])
        for job_id in ids:
            while httpx.get(f"{base}/v1/scans/{job_id}").json()["state"] not in ("done", "failed"):
                time.sleep(0.2)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1000, "height": 800})
            page.goto(f"{base}/#job={ids[-1]}")
            page.wait_for_selector("#verdict[data-verdict]")
            page.wait_for_function("[...document.querySelectorAll('.thumb img')].every(i => i.complete)")
            page.wait_for_selector("#recent .tag")
            png = page.screenshot(full_page=True)
            browser.close()
        # 256 colours: a page of flat colours stays sharp and the file small (< 200 KB)
        Image.open(io.BytesIO(png)).convert("RGB").quantize(colors=256).save(out, optimize=True)
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs/serve.png")

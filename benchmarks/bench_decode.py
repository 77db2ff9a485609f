"""Decode throughput and memory of vidshield.io.

1. Generates a long synthetic H.264 video (a smooth texture panning, 640x480 at 25 fps by default;
   libx264 ``fast``), frame by frame so generation itself stays small.
2. Streams it with ``iter_chunks`` in a fresh subprocess and reports decode frames/s, the peak
   RSS of that process (``resource.getrusage``) and the RSS sampled along the way (flat = bounded).
3. Decodes ``bikes.mp4`` (``$VIDSHIELD_MEDIA`` or ``../shared/media``) with ``read_frames``.

Prints one JSON object.

    python benchmarks/bench_decode.py                    # 60 s of video
    python benchmarks/bench_decode.py --duration 600     # 10 minutes
    python benchmarks/bench_decode.py --duration 3600    # the 1-hour case of the issue
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np

REPO = Path(__file__).resolve().parents[1]


def rss_mb() -> float:
    """Current resident set size (Linux /proc), MiB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def generate(path: Path, *, seconds: float, width: int, height: int, fps: int, preset: str) -> dict:
    """Encode a panning smooth texture; returns frames and seconds taken."""
    rng = np.random.default_rng(0)
    pad = 256
    coarse = rng.integers(0, 256, ((height + pad) // 8 + 1, (width + pad) // 8 + 1, 3), dtype=np.uint8)
    texture = np.kron(coarse, np.ones((8, 8, 1), np.uint8))[: height + pad, : width + pad]
    texture = (texture.astype(np.uint16) + rng.integers(0, 24, texture.shape)).clip(0, 255).astype(np.uint8)
    frames = int(round(seconds * fps))
    t0 = time.perf_counter()
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": preset, "crf": "23"}
        for i in range(frames):
            oy, ox = (i // 2) % pad, (3 * i) % pad
            frame = av.VideoFrame.from_ndarray(
                np.ascontiguousarray(texture[oy : oy + height, ox : ox + width]), format="rgb24"
            )
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return {"frames": frames, "seconds": time.perf_counter() - t0, "bytes": path.stat().st_size}


def stream_file(path: str, chunk: int, overlap: int) -> dict:
    """Run in a fresh process: stream the file and measure."""
    from vidshield.io import iter_chunks

    start_rss = rss_mb()
    samples = []
    frames = 0
    chunks = 0
    t0 = time.perf_counter()
    for start, block in iter_chunks(path, chunk_frames=chunk, overlap=overlap):
        frames = start + len(block)
        chunks += 1
        if chunks % 10 == 1:
            samples.append({"frame": frames, "rss_mb": round(rss_mb(), 1)})
        del block
    seconds = time.perf_counter() - t0
    samples.append({"frame": frames, "rss_mb": round(rss_mb(), 1)})
    return {
        "frames": frames,
        "chunk_frames": chunk,
        "overlap": overlap,
        "seconds": round(seconds, 2),
        "decode_fps": round(frames / seconds, 1),
        "rss_at_start_mb": round(start_rss, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "rss_samples": samples,
    }


def bikes(path: Path, repeats: int = 3) -> dict:
    from vidshield.io import read_frames

    if not path.is_file():
        return {"skipped": f"{path} not found"}
    out = {}
    for name, options in {
        "all_frames_640x272": {},
        "all_frames_short_side_112": {"short_side": 112},
        "16_sampled_112x112": {"num_frames": 16, "short_side": 112, "crop": (112, 112)},
    }.items():
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            decoded = read_frames(path, **options)
            best = min(best, time.perf_counter() - t0)
        out[name] = {"seconds": round(best, 4), "frames_returned": len(decoded), "decoded_fps": round(250 / best, 1)}
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=60.0, help="seconds of synthetic video (3600 = the 1-hour case)")
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--fps", type=int, default=25)
    p.add_argument("--preset", default="fast", help="x264 preset used to generate")
    p.add_argument("--chunk", type=int, default=64)
    p.add_argument("--overlap", type=int, default=8)
    p.add_argument("--keep", type=Path, default=None, help="write the generated video here and keep it")
    p.add_argument("--bikes", type=Path, default=None, help="bikes.mp4 (default $VIDSHIELD_MEDIA or ../shared/media)")
    p.add_argument("--stream", default=None, help=argparse.SUPPRESS)  # internal: subprocess mode
    args = p.parse_args(argv)

    if args.stream:
        print(json.dumps(stream_file(args.stream, args.chunk, args.overlap)))
        return 0

    media = Path(os.environ.get("VIDSHIELD_MEDIA") or REPO.parent / "shared" / "media")
    with tempfile.TemporaryDirectory() as tmp:
        video = args.keep or Path(tmp) / "long.mp4"
        gen = generate(
            video, seconds=args.duration, width=args.width, height=args.height, fps=args.fps, preset=args.preset
        )
        child = subprocess.run(
            [
                sys.executable,
                __file__,
                "--stream",
                str(video),
                "--chunk",
                str(args.chunk),
                "--overlap",
                str(args.overlap),
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        streamed = json.loads(child.stdout.strip().splitlines()[-1])
    result = {
        "video": {"seconds": args.duration, "width": args.width, "height": args.height, "fps": args.fps},
        "generate": {
            **gen,
            "seconds": round(gen["seconds"], 2),
            "encode_fps": round(gen["frames"] / gen["seconds"], 1),
        },
        "stream_iter_chunks": streamed,
        "bikes_read_frames": bikes(args.bikes or media / "bikes.mp4"),
        "cpu_count": os.cpu_count(),
        "av": av.__version__,
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

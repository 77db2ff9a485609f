"""A deterministic corpus of damaged video files for the scan fuzz test.

Small clips are encoded with PyAV in several codecs and containers, then mutated by a seeded
generator: truncations, bit flips, zeroed chunks, swapped chunks, header fields set to absurd
values, and odd file names (not UTF-8, near the file-system limit, matplotlib maths, terminal
escape codes). A few hand-made edge cases join them: too few frames, an extreme aspect ratio, a
resolution change midway.
"""

from __future__ import annotations

import os
import random
import struct
from pathlib import Path

import av
import numpy as np

# (name, container format, suffix, codec, pix_fmt)
SOURCES = [
    ("h264", "mp4", ".mp4", "libx264", "yuv420p"),
    ("ffv1", "matroska", ".mkv", "ffv1", "yuv420p"),
    ("mpeg4mkv", "matroska", ".mkv", "mpeg4", "yuv420p"),
    ("mjpeg", "avi", ".avi", "mjpeg", "yuvj420p"),
    ("mpeg4avi", "avi", ".avi", "mpeg4", "yuv420p"),
    ("mpeg2ts", "mpegts", ".ts", "mpeg2video", "yuv420p"),
    ("y4m", "yuv4mpegpipe", ".y4m", "rawvideo", "yuv420p"),
]

MUTATIONS = ("truncate", "bitflip", "zero", "swap", "header")


def _frames(n: int, height: int, width: int, seed: int) -> np.ndarray:
    """A smooth texture moving 2 px right per frame, uint8 (n, H, W, 3)."""
    rng = np.random.default_rng(seed)
    tex = rng.integers(0, 256, (height // 4 + 2, (width + 2 * n) // 4 + 2, 3)).astype(np.uint8)
    tex = np.kron(tex, np.ones((4, 4, 1), np.uint8))
    return np.stack([tex[:height, 2 * t : 2 * t + width] for t in range(n)])


def encode(path: Path, fmt: str, codec: str, pix_fmt: str, frames: np.ndarray, fps: int = 25) -> Path:
    """Encode uint8 RGB frames ``(T, H, W, 3)`` with PyAV, without vidshield's checks."""
    with av.open(str(path), "w", format=fmt, container_options={"fflags": "+bitexact"}) as out:
        stream = out.add_stream(codec, rate=fps)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = pix_fmt
        if codec == "libx264":
            stream.options = {"preset": "ultrafast"}
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def _mutate(data: bytes, kind: str, rng: random.Random) -> bytes:
    b = bytearray(data)
    n = len(b)
    if kind == "truncate":
        return bytes(b[: rng.randint(n // 20, n * 19 // 20)])
    if kind == "bitflip":
        for _ in range(rng.randint(1, 60)):
            i = rng.randrange(n)
            b[i] ^= 1 << rng.randrange(8)
        return bytes(b)
    if kind == "zero":
        length = rng.randint(16, max(17, n // 8))
        start = rng.randrange(max(1, n - length))
        b[start : start + length] = bytes(len(b[start : start + length]))
        return bytes(b)
    if kind == "swap":
        length = rng.randint(16, max(17, n // 10))
        i, j = sorted(rng.randrange(max(1, n - length)) for _ in range(2))
        if j - i >= length:
            b[i : i + length], b[j : j + length] = b[j : j + length], b[i : i + length]
        return bytes(b)
    if kind == "header":
        # set a 16- or 32-bit field in the first 1 KB (where the headers live) to an absurd value
        head = min(n - 4, 1024)
        i = rng.randrange(head)
        value = rng.choice([0, 1, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF, 0x10000])
        width = rng.choice([2, 4])
        b[i : i + width] = struct.pack(">I", value)[-width:]
        return bytes(b)
    raise ValueError(kind)


def _odd_names(rng: random.Random) -> list[bytes]:
    return [
        b"clip_\xff\xfe_latin1_\xe9.mkv",  # not UTF-8
        b"x" * 240 + b".mkv",  # near NAME_MAX (255): NAME.scan.json would not fit
        b"$\\alpha^{2}$ and $x_1$.mkv",  # matplotlib mathtext
        b"esc\x1b[31mred\x1b[0m.mkv",  # terminal escape codes
        b"new\nline.mkv",
        b"%s{}%d.mkv",
    ]


def special_cases(folder: Path) -> list[Path]:
    """Hand-made edge cases (valid encodings that are not usable videos, or odd names)."""
    folder = Path(folder)
    out = []
    out.append(encode(folder / "two_frames.mkv", "matroska", "ffv1", "yuv420p", _frames(2, 32, 32, 1)))
    out.append(encode(folder / "one_frame.mp4", "mp4", "libx264", "yuv420p", _frames(1, 32, 32, 2)))
    out.append(encode(folder / "sliver.mkv", "matroska", "ffv1", "bgr0", _frames(4, 2, 2048, 3)))
    # resolution changes midway: two MPEG-TS streams of different sizes, concatenated
    a = encode(folder / "_a.ts", "mpegts", "mpeg2video", "yuv420p", _frames(8, 32, 48, 4))
    b = encode(folder / "_b.ts", "mpegts", "mpeg2video", "yuv420p", _frames(8, 48, 32, 5))
    joined = folder / "size_change.ts"
    joined.write_bytes(a.read_bytes() + b.read_bytes())
    a.unlink()
    b.unlink()
    out.append(joined)
    clip = encode(folder / "_clip.mkv", "matroska", "ffv1", "yuv420p", _frames(12, 32, 32, 6))
    rng = random.Random(7)
    for raw in _odd_names(rng):
        target = Path(os.fsdecode(bytes(folder) + b"/" + raw))
        target.write_bytes(clip.read_bytes())
        out.append(target)
    clip.unlink()
    return out


def make_corpus(folder: Path, *, seed: int = 0, per_source: int = 13) -> list[Path]:
    """Write the corpus into ``folder``: ``per_source`` mutants of each source clip (cycling
    through :data:`MUTATIONS`), the intact sources and :func:`special_cases`. Deterministic."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    files = []
    for k, (name, fmt, suffix, codec, pix_fmt) in enumerate(SOURCES):
        src = encode(folder / f"{name}{suffix}", fmt, codec, pix_fmt, _frames(20, 48, 64, seed + k))
        files.append(src)
        data = src.read_bytes()
        for i in range(per_source):
            kind = MUTATIONS[i % len(MUTATIONS)]
            path = folder / f"{name}_{i:02d}_{kind}{suffix}"
            path.write_bytes(_mutate(data, kind, rng))
            files.append(path)
    return files + special_cases(folder)

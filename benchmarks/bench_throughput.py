"""Throughput on real footage, with its references measured in the same run (issue 16).

1. Temporal defense, every frame rebuilt from the previous one (8x8, range 7, QP 36, one thread),
   on the uint8 path (decoded frames in, decoded frames out) and on the float path, next to
   libx264 preset medium one thread encoding the same frames: SD (768x576) and 1280x720.
2. Scan: ``vidshield scan`` on a long 640x480 video (frames/s, real-time factor) next to decoding the
   same file to RGB at full resolution (``iter_frames``) right before and after it; peak and sampled
   RSS of the scan process. ``--scan-runs`` runs (default 3): the run with the median wall-time
   ratio is reported, with every run's figures and the medians of both ratios.
3. Start-up: ``vidshield --help``, ``vidshield scan --help`` and ``vidshield scan`` on a one-window
   clip, wall and CPU seconds of the whole process (medians of ``--startup-runs`` runs), next to
   ``python -c "import torch"``.
4. Streaming defend: ``vidshield defend --method temporal --every 8`` on the long video (frames/s,
   peak RSS, RSS samples), and optionally ``--method spatial --yes`` on a 4K clip (``--spatial-4k N``
   frames; ComDefend at 4K takes minutes per frame on a CPU).
5. ``--demo``: wall time of ``vidshield demo``.

Every subprocess is measured alone (peak RSS from ``wait4``, RSS sampled every second). The load
average is recorded before and after: the cores may be shared. Decoding to RGB is timed right
before and right after the scan; the ratio is to their mean. Writes one JSON file; with
``--parts`` only those parts run and the others are kept from the file as it was (each part
records its own load average and time).

    python benchmarks/bench_throughput.py --sd-clip SD.mp4 --hd-clip HD.mp4 --long LONG.mp4 [--demo]
        [--spatial-4k 1] [--out results/bench-throughput-cpu.json]
    python benchmarks/bench_throughput.py --device cuda ...   # the spatial rows on a GPU
    python benchmarks/bench_throughput.py --parts scan,startup --long LONG.mp4   # those rows only

Without clips it uses ``bigbuckbunny.mp4`` ($VIDSHIELD_MEDIA or ../shared/media) scaled to SD and
at 720p, and generates the long video (bikes.mp4 scaled to 640x480, played back and forth).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

REPO = Path(__file__).resolve().parents[1]
MEDIA = Path(os.environ.get("VIDSHIELD_MEDIA") or REPO.parent / "shared" / "media")
PYTHON = sys.executable


def decode(path: Path, frames: int, size: tuple[int, int] | None = None) -> np.ndarray:
    """First ``frames`` frames as uint8 (T, H, W, 3), scaled to ``size`` (H, W) by swscale."""
    out = []
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            if size:
                f = f.reformat(width=size[1], height=size[0])
            out.append(f.to_ndarray(format="rgb24"))
            if len(out) == frames:
                break
    return np.stack(out)


def _timed(fn) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this thread) of ``fn()``."""
    wall, cpu = time.perf_counter(), time.thread_time()
    fn()
    return time.perf_counter() - wall, time.thread_time() - cpu


def x264_encode(frames: np.ndarray):
    """libx264 preset medium, one thread (no lookahead or slice threads: it all runs in the calling
    thread), on frames pre-converted to yuv420p. Returns the encode function to time."""
    yuv = [av.VideoFrame.from_ndarray(f, format="rgb24").reformat(format="yuv420p") for f in frames]

    def encode():
        ctx = av.CodecContext.create("libx264", "w")
        ctx.width, ctx.height, ctx.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        ctx.time_base = Fraction(1, 25)
        ctx.options = {"preset": "medium", "crf": "23", "threads": "1"}
        for f in yuv:
            ctx.encode(f)
        ctx.encode(None)

    return encode


def temporal_speed(frames: np.ndarray, repeats: int) -> dict:
    """Rebuild frame i from frame i-1 for every i >= 1 on the uint8 path and the float path, and
    x264 encoding the same frames; rounds interleave the three. Frames/s by wall time (best round)
    and by the thread's CPU time (best round: robust to other jobs on the cores)."""
    import torch

    from vidshield.defenses.temporal import rebuild_frames, rebuild_frames_uint8
    from vidshield.video import frames_to_tensor, tensor_to_frames

    torch.set_num_threads(1)
    rebuild_frames_uint8(frames[1:2], frames[0], None)  # compile / load the kernels
    floats = frames_to_tensor(frames)
    n = frames.shape[0] - 1
    out: dict[str, list] = {"uint8": [], "float": []}
    runs = {
        "x264_medium_1thread": x264_encode(frames),
        "uint8": lambda: out["uint8"].append(
            [rebuild_frames_uint8(frames[i : i + 1], frames[i - 1], None) for i in range(1, n + 1)]
        ),
        "float": lambda: out["float"].append(
            [rebuild_frames(floats[i : i + 1], floats[i - 1 : i], None) for i in range(1, n + 1)]
        ),
    }
    wall = {k: 0.0 for k in runs}
    cpu = {k: 0.0 for k in runs}
    for _ in range(repeats):
        for name, fn in runs.items():
            w, c = _timed(fn)
            wall[name], cpu[name] = max(wall[name], n / w), max(cpu[name], n / c)
    same = all(np.array_equal(a, tensor_to_frames(b)) for a, b in zip(out["uint8"][0], out["float"][0]))
    row = {"frames_rebuilt": n, "size": list(frames.shape[1:3])}
    for name in runs:
        row[f"{name}_fps"] = round(wall[name], 1)
        row[f"{name}_fps_cpu"] = round(cpu[name], 1)
    for name in ("uint8", "float"):
        row[f"{name}_vs_x264"] = round(wall[name] / wall["x264_medium_1thread"], 2)
        row[f"{name}_vs_x264_cpu"] = round(cpu[name] / cpu["x264_medium_1thread"], 2)
    row["uint8_equals_float_rounded"] = same
    return row


def measure(cmd: list[str], *, env=None) -> dict:
    """Run ``wrapped(args)``: wall and CPU seconds and peak RSS of the command (wait4, by the wrapper), and
    its RSS sampled every second."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    samples = []
    page = os.sysconf("SC_PAGE_SIZE")
    while proc.poll() is None:
        try:  # the command runs as the wrapper's child: sample that process
            with open(f"/proc/{proc.pid}/task/{proc.pid}/children") as f:
                pids = f.read().split()
            with open(f"/proc/{pids[0]}/statm") as f:
                samples.append(
                    [round(time.perf_counter() - start, 1), round(int(f.read().split()[1]) * page / 2**20, 1)]
                )
        except (OSError, IndexError):
            pass
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=1.0)
    wall = time.perf_counter() - start
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {err.decode()[-2000:]}")
    report = json.loads(out.decode().strip().splitlines()[-1])
    report["wall_s"] = round(wall, 2)
    report["rss_samples_mb"] = samples[:: max(1, len(samples) // 40)]
    return report


def wrapped(args: list[str]) -> list[str]:
    """``args`` run under :func:`child` (this file with ``--child``), which reports its rusage."""
    return [PYTHON, __file__, "--child", "--", *args]


def child(args: list[str]) -> int:
    """Run ``args`` and print its wall/CPU seconds and peak RSS (from wait4) as one JSON line."""
    with tempfile.TemporaryFile() as out_file, tempfile.TemporaryFile() as err_file:
        start = time.perf_counter()
        proc = subprocess.Popen(args, stdout=out_file, stderr=err_file)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        out_file.seek(0)
        err_file.seek(0)
        out, err = out_file.read().decode(errors="replace"), err_file.read().decode(errors="replace")
    if status != 0:
        sys.stderr.write(err)
        return 1
    print(
        json.dumps(
            {
                "process_wall_s": round(wall, 2),
                "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
                "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
                "output_tail": (out + err)[-600:],
            }
        )
    )
    return 0


def median_run(cmd: list[str], runs: int) -> dict:
    """:func:`measure` of ``wrapped(cmd)`` ``runs`` times: the median wall and CPU seconds, and all runs."""
    got = [measure(wrapped(cmd)) for _ in range(runs)]
    return {
        "runs": runs,
        "process_wall_s_median": round(float(np.median([g["process_wall_s"] for g in got])), 2),
        "cpu_s_median": round(float(np.median([g["cpu_s"] for g in got])), 2),
        "process_wall_s": [g["process_wall_s"] for g in got],
        "cpu_s": [g["cpu_s"] for g in got],
        "peak_rss_mb": max(g["peak_rss_mb"] for g in got),
        "output_tail": got[-1]["output_tail"][-300:],
    }


def first_output_on_a_terminal(cmd: list[str]) -> float:
    """Seconds from starting ``cmd`` with stdout and stderr on a pseudo-terminal to its first byte
    there (what a user at a terminal waits for); the command then runs to its end."""
    import pty
    import select

    master, slave = pty.openpty()
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=slave, stderr=slave, stdin=subprocess.DEVNULL)
    os.close(slave)
    first = None
    while True:
        ready, _, _ = select.select([master], [], [], 1.0)
        if ready:
            try:
                data = os.read(master, 4096)
            except OSError:  # the terminal closed: the command ended
                break
            if not data:
                break
            first = first if first is not None else time.perf_counter() - start
        elif proc.poll() is not None:
            break
    proc.wait()
    os.close(master)
    return round(first if first is not None else float("nan"), 2)


def decode_fps(path: Path, limit: int | None = None) -> dict:
    """Decoding to RGB at full size (``iter_frames``) in this process: frames/s, and CPU ms per
    frame (this process, FFmpeg's decoding threads included)."""
    from vidshield.io import iter_frames

    start, cpu = time.perf_counter(), time.process_time()
    n = 0
    for _ in iter_frames(path):
        n += 1
        if limit and n == limit:
            break
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {
        "frames": n,
        "seconds": round(seconds, 2),
        "fps": round(n / seconds, 1),
        "cpu_ms_per_frame": round(cpu / n * 1e3, 2),
    }


def scan_run(args, long: Path, info, duration: float, vidshield: list[str], tmp: Path) -> dict:
    """One ``vidshield scan`` of the long video, with decoding to RGB timed right before and after
    it: the process's figures and its ratios to the mean of the two decodes (wall and CPU time)."""
    dec = decode_fps(long)
    scan = measure(
        wrapped(
            [
                *vidshield,
                "scan",
                str(long),
                "--report",
                str(tmp / "r.json"),
                "--plot",
                str(tmp / "r.png"),
                "--device",
                args.device,
            ]
        )
    )
    after = decode_fps(long)
    scan["frames_per_s"] = round(info.num_frames / scan["process_wall_s"], 1)
    scan["real_time_factor"] = round(duration / scan["process_wall_s"], 1)
    scan["vs_decode_to_rgb"] = round(scan["frames_per_s"] / ((dec["fps"] + after["fps"]) / 2), 2)
    # the same by CPU time (robust to other jobs on the cores): the scan's whole process, start-up included
    scan["cpu_ms_per_frame"] = round(scan["cpu_s"] / info.num_frames * 1e3, 2)
    decode_cpu = (dec["cpu_ms_per_frame"] + after["cpu_ms_per_frame"]) / 2
    scan["vs_decode_to_rgb_cpu"] = round(decode_cpu / scan["cpu_ms_per_frame"], 2)
    saved = json.loads((tmp / "r.json").read_text())
    scan["verdict"], scan["in_domain"] = saved["verdict"], saved["in_domain"]
    return {
        "decode_to_rgb": dec,
        "decode_to_rgb_after": after,
        "scan_process": scan,
        "load_average": round(os.getloadavg()[0], 2),
    }


def make_long(path: Path, seconds: float) -> None:
    """bikes.mp4 scaled to 640x480, played forwards and backwards (no cut), libx264 fast, 25 fps."""
    frames = []
    with av.open(str(MEDIA / "bikes.mp4")) as c:
        for f in c.decode(video=0):
            frames.append(f.reformat(width=640, height=480, format="yuv420p"))
    period = 2 * len(frames) - 2
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 640, 480, "yuv420p"
        stream.options = {"preset": "fast", "crf": "23"}
        for i in range(int(seconds * 25)):
            k = i % period
            frame = frames[k if k < len(frames) else period - k]
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


def make_4k(path: Path, frames: int) -> None:
    """``frames`` frames of bigbuckbunny scaled to 3840x2160, lossless-ish H.264 (crf 12)."""
    src = decode(MEDIA / "bigbuckbunny.mp4", frames, size=(2160, 3840))
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 3840, 2160, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "12"}
        for i, f in enumerate(src):
            frame = av.VideoFrame.from_ndarray(f, format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sd-clip", type=Path, default=None, help="SD footage (default: bigbuckbunny scaled to 768x576)")
    p.add_argument("--hd-clip", type=Path, default=None, help="720p footage (default: bigbuckbunny.mp4)")
    p.add_argument("--frames", type=int, default=48)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--long", type=Path, default=None, help="long 640x480 video (default: generated)")
    p.add_argument("--long-seconds", type=float, default=300.0, help="length of the generated long video")
    p.add_argument("--spatial-4k", type=int, default=0, help="frames of 4K to defend spatially (0: skip)")
    p.add_argument("--demo", action="store_true", help="also time `vidshield demo`")
    p.add_argument("--device", default="cpu", help="device of the spatial defense and the scan's models")
    p.add_argument("--startup-runs", type=int, default=5, help="runs of each start-up command (median)")
    p.add_argument("--scan-runs", type=int, default=3, help="runs of the long scan (the median run is reported)")
    p.add_argument(
        "--parts",
        default=None,
        help="comma-separated: temporal, scan, startup, defend (and spatial-4k, demo when asked); the other "
        "parts of --out are kept [default: all]",
    )
    p.add_argument("--out", type=Path, default=REPO / "results" / "bench-throughput-cpu.json")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("rest", nargs="*", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        sys.exit(child(args.rest))

    vidshield = [PYTHON, "-c", "import sys; from vidshield.cli import main; sys.exit(main())"]
    parts = set(args.parts.split(",")) if args.parts else {"temporal", "scan", "startup", "defend"}
    if args.spatial_4k:
        parts.add("spatial-4k")
    if args.demo:
        parts.add("demo")
    report: dict = json.loads(args.out.read_text()) if args.parts and args.out.is_file() else {}
    report.update({"load_average_before": [round(x, 2) for x in os.getloadavg()], "cpu_count": os.cpu_count()})
    report["device"] = args.device
    if "temporal" in parts:
        temporal_part(args, report)
    with tempfile.TemporaryDirectory() as tmp:
        process_parts(args, report, parts, vidshield, Path(tmp))
    report["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    return report


def stamp() -> dict:
    """When a part was measured and the load average then."""
    return {"measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "load_average": os.getloadavg()[0]}


def temporal_part(args, report: dict) -> None:
    sd = (
        decode(args.sd_clip, args.frames)
        if args.sd_clip
        else decode(MEDIA / "bigbuckbunny.mp4", args.frames, size=(576, 768))
    )
    hd = decode(args.hd_clip or MEDIA / "bigbuckbunny.mp4", args.frames)
    report["temporal_every_frame_rebuilt"] = {
        "source": {
            "sd": str(args.sd_clip or "bigbuckbunny.mp4 scaled to 768x576"),
            "hd": str(args.hd_clip or "bigbuckbunny.mp4"),
        },
        "sd": temporal_speed(sd, args.repeats),
        "hd": temporal_speed(hd, args.repeats),
        **stamp(),
    }
    print(json.dumps(report["temporal_every_frame_rebuilt"]), flush=True)


def process_parts(args, report: dict, parts: set[str], vidshield: list[str], tmp: Path) -> None:
    """The parts that run ``vidshield`` as a process (scan, startup, defend, spatial-4k, demo)."""
    from vidshield.io import probe

    long = args.long
    if long is None and parts & {"scan", "defend"}:
        long = tmp / "long.mp4"
        make_long(long, args.long_seconds)
    if long is not None:
        info = probe(long)
        duration = info.num_frames / (info.fps or 25.0)
    if "scan" in parts:
        runs = [scan_run(args, long, info, duration, vidshield, tmp) for _ in range(args.scan_runs)]
        median = sorted(runs, key=lambda r: r["scan_process"]["vs_decode_to_rgb"])[(len(runs) - 1) // 2]
        report["scan"] = {
            "video": {
                "path": str(args.long or f"generated: bikes.mp4 at 640x480, {args.long_seconds:.0f} s"),
                "frames": info.num_frames,
                "size": [info.height, info.width],
                "seconds": round(duration, 1),
            },
            **median,  # the run with the median wall-time ratio; every run below
            "runs": [
                {
                    "frames_per_s": r["scan_process"]["frames_per_s"],
                    "cpu_s": r["scan_process"]["cpu_s"],
                    "decode_to_rgb_fps": [r["decode_to_rgb"]["fps"], r["decode_to_rgb_after"]["fps"]],
                    "vs_decode_to_rgb": r["scan_process"]["vs_decode_to_rgb"],
                    "vs_decode_to_rgb_cpu": r["scan_process"]["vs_decode_to_rgb_cpu"],
                    "load_average": r["load_average"],
                }
                for r in runs
            ],
            "vs_decode_to_rgb_median": float(np.median([r["scan_process"]["vs_decode_to_rgb"] for r in runs])),
            "vs_decode_to_rgb_cpu_median": float(np.median([r["scan_process"]["vs_decode_to_rgb_cpu"] for r in runs])),
            **stamp(),
        }
        print(json.dumps({k: v for k, v in report["scan"].items() if k != "scan_process"}), flush=True)

    if "startup" in parts:
        one = tmp / "one.mkv"
        from vidshield.io import write_video

        write_video(one, decode(MEDIA / "bikes.mp4", 16), fps=25.0)
        runs = args.startup_runs
        scan_one = [*vidshield, "scan", str(one), "--report", str(tmp / "o.json"), "--plot", str(tmp / "o.png")]
        report["startup"] = {
            "help": median_run([*vidshield, "--help"], runs),
            "scan_help": median_run([*vidshield, "scan", "--help"], runs),
            "scan_one_window": median_run(scan_one, runs),
            "scan_first_output_on_a_terminal_s": sorted(first_output_on_a_terminal(scan_one) for _ in range(3))[1],
            "import_torch": median_run([PYTHON, "-c", "import torch"], runs),
            **stamp(),
        }
        print(json.dumps(report["startup"]), flush=True)

    if "defend" in parts:
        temporal = measure(
            wrapped([*vidshield, "defend", str(long), "-o", str(tmp / "t.mkv"), "--method", "temporal", "--every", "8"])
        )
        temporal["frames_per_s"] = round(info.num_frames / temporal["process_wall_s"], 1)
        report["defend_temporal_every8"] = {**temporal, **stamp()}
        print(json.dumps(temporal), flush=True)

    if "spatial-4k" in parts:
        big = tmp / "4k.mp4"
        make_4k(big, args.spatial_4k)
        spatial = measure(
            wrapped(
                [
                    *vidshield,
                    "defend",
                    str(big),
                    "-o",
                    str(tmp / "s.mkv"),
                    "--method",
                    "spatial",
                    "--yes",
                    "--device",
                    args.device,
                ]
            )
        )
        spatial["frames"] = args.spatial_4k
        spatial["seconds_per_frame"] = round(spatial["process_wall_s"] / args.spatial_4k, 1)
        report["defend_spatial_4k"] = {**spatial, **stamp()}
        print(json.dumps(spatial), flush=True)

    if "demo" in parts:
        report["demo"] = {**measure(wrapped([*vidshield, "demo", "--out", str(tmp / "demo")])), **stamp()}
        print(json.dumps({k: v for k, v in report["demo"].items() if k != "rss_samples_mb"}), flush=True)


if __name__ == "__main__":
    main()

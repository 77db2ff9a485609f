"""Corpus-scan throughput: the local engine and the Ray engine with 1 and 2 workers, and the cost
of each stage of one video (hash, decode, pipeline, defenses), for the cluster plan in
docs/scaling.md.

1. Generates a corpus of synthetic H.264 clips (``--videos`` clips of ``--frames`` frames at
   ``--size``, libx264 CRF 23: what uploads look like, not lossless FFV1).
2. Stage costs in this process, one thread, warm: SHA-256 of the files, decoding to the model's
   view, the pipeline on decoded windows (the routing the clips get), the temporal defense per
   rebuilt frame and ComDefend per frame (what sparse and dense verdicts add).
3. Each engine and worker count scans the corpus into a fresh .jsonl: wall seconds (with the
   workers' start-up), steady seconds (first video handed out -> last row), videos/s and
   frames/s over the steady part, the ratio to one worker, Ray's steady time over the local
   engine's. Ray runs on a local instance started once (its start-up is reported apart).

Prints one JSON object and writes it to ``--out``.

    python benchmarks/bench_corpus.py                      # results/bench-corpus-cpu.json
    python benchmarks/bench_corpus.py --videos 32 --frames 250 --size 640x360 --device cuda --out results/bench-corpus-gpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

from vidshield.data.synthetic import generate_clip
from vidshield.distributed.corpus import (
    ScanSettings,
    content_hash,
    decode_video,
    list_videos,
    pipeline_for,
    read_rows,
    scan_corpus,
    scan_decoded,
)
from vidshield.io import write_video
from vidshield.pipeline import working_spec

REPO = Path(__file__).resolve().parents[1]


def make_corpus(folder: Path, videos: int, frames: int, size: tuple[int, int]) -> list[Path]:
    paths = []
    for i in range(videos):
        path = folder / f"clip_{i:03d}.mp4"
        if not path.exists():
            clip = generate_clip(
                i % 10, generator=torch.Generator().manual_seed(i), frames=frames, height=size[0], width=size[1]
            )
            write_video(path, clip, fps=25.0)
        paths.append(path)
    return paths


def stage_costs(paths: list[Path], settings: ScanSettings) -> dict:
    """Per-stage seconds over the corpus, one thread, after one warm-up video."""
    torch.set_num_threads(1)
    pipeline = pipeline_for(settings)
    spec = working_spec(pipeline)
    scan_decoded(*decode_video(str(paths[0]), settings, spec), settings)  # warm-up (numba, allocators)
    t_hash = t_decode = t_pipeline = 0.0
    frames = size = 0
    verdicts: dict[str, int] = {}
    for path in paths:
        t0 = time.perf_counter()
        n, _ = content_hash(path)
        t_hash += time.perf_counter() - t0
        size += n
        t0 = time.perf_counter()
        head, windows = decode_video(str(path), settings, spec)
        t_decode += time.perf_counter() - t0
        t0 = time.perf_counter()
        row = scan_decoded(head, windows, settings)
        t_pipeline += time.perf_counter() - t0
        frames += row["num_frames"]
        verdicts[row["verdict"]] = verdicts.get(row["verdict"], 0) + 1
    window = torch.rand(1, spec.frames, 3, spec.height, spec.width)
    mask = torch.zeros(1, spec.frames, dtype=torch.bool)
    mask[0, [3, 7, 11]] = True
    pipeline.temporal(window, polluted=mask)  # warm-up
    t0 = time.perf_counter()
    for _ in range(3):
        pipeline.temporal(window, polluted=mask)
    temporal_per_frame = (time.perf_counter() - t0) / 9
    with torch.no_grad():
        pipeline.spatial(window)
        t0 = time.perf_counter()
        pipeline.spatial(window)
    spatial_per_frame = (time.perf_counter() - t0) / spec.frames
    return {
        "videos": len(paths),
        "frames": frames,
        "bytes": size,
        "verdicts": verdicts,
        "hash_mb_per_s": round(size / 2**20 / t_hash, 1),
        "decode_fps": round(frames / t_decode, 1),
        "pipeline_fps": round(frames / t_pipeline, 1),
        "temporal_s_per_rebuilt_frame": round(temporal_per_frame, 4),
        "comdefend_s_per_frame": round(spatial_per_frame, 4),
        "model_view": f"{spec.frames}x{spec.height}x{spec.width}",
    }


def run_engine(corpus: Path, out: Path, settings: ScanSettings, engine: str, workers: int, **options) -> dict:
    out.unlink(missing_ok=True)
    marks: dict[str, float] = {}

    def on_event(kind, info):
        now = time.perf_counter()
        if kind == "dispatch":
            marks.setdefault("first_dispatch", now)
        elif kind == "row":
            marks["last_row"] = now

    t0 = time.perf_counter()
    report = scan_corpus(corpus, out, settings, engine=engine, workers=workers, on_event=on_event, **options)
    wall = time.perf_counter() - t0
    steady = marks["last_row"] - marks["first_dispatch"]
    rows = read_rows(out)
    assert report["scanned"] == len(rows) and not report["errors"], report
    return {
        "engine": engine,
        "workers": workers,
        "videos": report["scanned"],
        "frames": report["frames"],
        "wall_s": round(wall, 2),
        "steady_s": round(steady, 2),
        "videos_per_s": round(report["scanned"] / steady, 3),
        "frames_per_s": round(report["frames"] / steady, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=16)
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--size", default="240x320", help="HxW of the generated clips")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--workers", default="1,2", help="worker counts to run")
    parser.add_argument("--corpus", type=Path, default=None, help="where to keep the clips [default: a temp folder]")
    parser.add_argument("--out", type=Path, default=REPO / "results" / "bench-corpus-cpu.json")
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.lower().split("x"))
    counts = [int(w) for w in args.workers.split(",")]
    settings = ScanSettings(model="synthetic-lrcn", device=args.device)

    with tempfile.TemporaryDirectory() as tmp:
        corpus = args.corpus or Path(tmp) / "corpus"
        corpus.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        make_corpus(corpus, args.videos, args.frames, size)
        generate_s = time.perf_counter() - t0
        paths = list_videos(corpus)
        stages = stage_costs(paths, settings)

        runs = [run_engine(corpus, Path(tmp) / "scan.jsonl", settings, "local", w) for w in counts]
        import ray

        t0 = time.perf_counter()
        ray.init(num_cpus=max(counts) + 1, include_dashboard=False, log_to_driver=False)
        ray_start_s = time.perf_counter() - t0
        gpus = 1.0 if args.device.startswith("cuda") else 0.0
        try:
            runs += [
                run_engine(corpus, Path(tmp) / "scan.jsonl", settings, "ray", w, batch_size=4, gpus_per_worker=gpus)
                for w in counts
            ]
        finally:
            ray.shutdown()

    for run in runs:
        one = next(r for r in runs if r["engine"] == run["engine"] and r["workers"] == counts[0])
        run["ratio_to_one_worker"] = round(run["videos_per_s"] / one["videos_per_s"], 2)
        if run["engine"] == "ray":
            local = next(r for r in runs if r["engine"] == "local" and r["workers"] == run["workers"])
            run["steady_s_over_local"] = round(run["steady_s"] / local["steady_s"], 2)
    result = {
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "torch": torch.__version__,
            "device": args.device,
            "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
            "note": "shared development machine: 2 cores, used by other jobs at the same time",
        },
        "corpus": {"videos": args.videos, "frames": args.frames, "size": args.size, "codec": "h264 crf 23"},
        "generate_s": round(generate_s, 1),
        "stages_one_thread": stages,
        "ray_start_s": round(ray_start_s, 1),
        "runs": runs,
        "settings": "shipped synthetic-lrcn detector and classifier, ComDefend, QP 36",
        "command": "python benchmarks/bench_corpus.py "
        + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if v is not None),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

"""Temporal defense benchmark: speed next to x264, quality per QP, vectors next to FFmpeg's.

Speed: rebuild every frame from its previous frame (block matching + compensation + residual
coding at QP 36) for each search method, next to libx264 preset medium, one thread, encoding
the same frames in the same run; and ``TemporalDefense`` on the whole clip (bidirectional, key
frame every 8). Quality: PSNR / SSIM of every frame rebuilt from its previous
frame against the original, per QP, with the residual dropped, and for zero motion (copy the
previous frame). Vectors: agreement with the motion vectors FFmpeg's H.264 decoder exports
(flags2=+export_mvs) on textured 8x8 / 16x16 blocks with a past reference.

    .venv/bin/python benchmarks/bench_temporal.py [--frames 48] [--device cpu|cuda] [--chunk 1] [--json]
    .venv/bin/python benchmarks/bench_temporal.py --save-clips bikes.safetensors   # then, without PyAV:
    python benchmarks/bench_temporal.py --clips-file bikes.safetensors --device cuda
"""

from __future__ import annotations

import argparse
import json
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from vidshield.defenses import create_defense
from vidshield.defenses.temporal import SEARCH_METHODS, estimate_motion, key_frame_mask, rebuild_frames
from vidshield.video import rgb_to_luma

MEDIA = Path(__file__).resolve().parents[1].parent / "shared" / "media"


def decode(path: Path, frames: int, *, size: tuple[int, int] | None = None, stride: int = 1) -> torch.Tensor:
    """First ``frames`` frames (every ``stride``-th) as float (T, 3, H, W) in [0, 1]."""
    import av

    out = []
    with av.open(str(path)) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i % stride == 0:
                if size:
                    f = f.reformat(width=size[1], height=size[0])
                out.append(f.to_ndarray(format="rgb24"))
            if len(out) == frames:
                break
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).float().div(255)


def x264_fps(video: torch.Tensor) -> float:
    """libx264 preset medium, threads=1, encode time only (frames pre-converted to yuv420p)."""
    import av

    frames = (video * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    h, w = frames.shape[1:3]
    yuv = [av.VideoFrame.from_ndarray(f, format="rgb24").reformat(format="yuv420p") for f in frames]
    ctx = av.CodecContext.create("libx264", "w")
    ctx.width, ctx.height, ctx.pix_fmt = w - w % 2, h - h % 2, "yuv420p"
    ctx.time_base = Fraction(1, 25)
    ctx.options = {"preset": "medium", "crf": "23", "threads": "1"}
    start = time.perf_counter()
    for f in yuv:
        ctx.encode(f)
    ctx.encode(None)
    return len(yuv) / (time.perf_counter() - start)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = ((a - b) ** 2).mean().item()
    return float("inf") if mse == 0 else 10 * np.log10(1 / mse)


def ssim(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean SSIM of luma, 11x11 Gaussian window (sigma 1.5), Wang et al. 2004 constants."""
    x, y = rgb_to_luma(a).unsqueeze(1), rgb_to_luma(b).unsqueeze(1)
    g = torch.exp(-((torch.arange(11, dtype=x.dtype) - 5) ** 2) / (2 * 1.5**2))
    g = (g / g.sum()).to(x.device)
    win = lambda z: F.conv2d(F.conv2d(z, g.view(1, 1, 1, -1)), g.view(1, 1, -1, 1))  # noqa: E731
    mx, my = win(x), win(y)
    vx, vy, cxy = win(x * x) - mx**2, win(y * y) - my**2, win(x * y) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return s.mean().item()


def speed(
    video: torch.Tensor, device: torch.device, *, chunk: int = 1, repeats: int = 3, with_x264: bool = True
) -> dict:
    """Frames/s of rebuilding every frame from its previous one, ``chunk`` frames per call (1:
    frame by frame, as a stream), per search method, and of x264 on the same frames; each figure
    is the best of ``repeats`` rounds, the rounds interleaving x264 and the methods."""
    cur, prev = video[1:].to(device).contiguous(), video[:-1].to(device).contiguous()
    for method in SEARCH_METHODS:
        rebuild_frames(cur[:2], prev[:2], None, method=method)  # warm-up (numba compile, CUDA init)
    best: dict[str, float] = {}
    for _ in range(repeats):
        if with_x264:
            best["x264_medium_1thread_fps"] = max(best.get("x264_medium_1thread_fps", 0.0), x264_fps(video))
        for method in SEARCH_METHODS:
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            for s in range(0, cur.shape[0], chunk):
                rebuild_frames(cur[s : s + chunk], prev[s : s + chunk], None, method=method)
            if device.type == "cuda":
                torch.cuda.synchronize()
            fps = cur.shape[0] / (time.perf_counter() - start)
            best[f"{method}_fps"] = max(best.get(f"{method}_fps", 0.0), fps)
        start = time.perf_counter()  # block matching alone (planes + full search), frame by frame
        for i in range(cur.shape[0]):
            estimate_motion(cur[i : i + 1], prev[i : i + 1])
        ms = 1000 * (time.perf_counter() - start) / cur.shape[0]
        best["estimate_motion_full_ms"] = min(best.get("estimate_motion_full_ms", float("inf")), ms)
        # the Defense module as the pipeline calls it: bidirectional, key frame every 8, the
        # whole clip in (range check, output copy), rebuilt frames per second
        defense, clip = create_defense("temporal", key_every=8), video.to(device).unsqueeze(0).contiguous()
        rebuilt = int(key_frame_mask(clip.shape[1], every=8).sum())
        start = time.perf_counter()
        defense(clip)
        if device.type == "cuda":
            torch.cuda.synchronize()
        fps = rebuilt / (time.perf_counter() - start)
        best["defense_bidirectional_key8_fps"] = max(best.get("defense_bidirectional_key8_fps", 0.0), fps)
    return {"chunk": chunk, **{k: round(v, 2 if k.endswith("_ms") else 1) for k, v in best.items()}}


def quality(video: torch.Tensor, device: torch.device, qps, chunk: int = 16) -> dict:
    cur, prev = video[1:].to(device), video[:-1].to(device)

    def run(**kw):
        parts = [rebuild_frames(cur[s : s + chunk], prev[s : s + chunk], None, **kw) for s in range(0, len(cur), chunk)]
        out = torch.cat(parts)
        return {"psnr": round(psnr(out, cur), 2), "ssim": round(ssim(out, cur), 4)}

    row = {"zero_motion": {"psnr": round(psnr(prev, cur), 2), "ssim": round(ssim(prev, cur), 4)}}
    row["mc_only"] = run(residual=False)
    for qp in qps:
        row[f"qp{qp}"] = run(qp=qp)
    return row


def ffmpeg_vectors(path: Path, frames: int):
    """Per decoded frame: list of (w, h, dst_x, dst_y, dy, dx) for past-reference blocks."""
    import av

    out = []
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        stream.codec_context.options = {"flags2": "+export_mvs"}
        for i, f in enumerate(c.decode(stream)):
            mvs = f.side_data.get("MOTION_VECTORS")
            rows = []
            if mvs is not None:
                a = mvs.to_ndarray()
                a = a[a["source"] == -1]
                for r in a:
                    scale = max(int(r["motion_scale"]), 1)
                    # the block at dst came from src = dst + motion/scale in the past frame
                    rows.append(
                        (
                            int(r["w"]),
                            int(r["h"]),
                            int(r["dst_x"]),
                            int(r["dst_y"]),
                            int(r["motion_y"]) / scale,
                            int(r["motion_x"]) / scale,
                        )
                    )
            out.append(rows)
            if i + 1 == frames:
                break
    return out


def vector_agreement(path: Path, video: torch.Tensor, device: torch.device) -> dict:
    """Fraction of textured codec blocks (luma std > 10) whose integer-rounded FFmpeg vector
    (the reference is the previous frame for P frames of these clips) equals ours (8x8 full
    search, range 7; codec blocks of 16x16 compare with each of their four 8x8 vectors' mode)."""
    mvs = ffmpeg_vectors(path, video.shape[0])
    luma = rgb_to_luma(video) * 255
    agree = total = within1 = 0
    for t in range(1, video.shape[0]):
        rows = [r for r in mvs[t] if r[0] in (8, 16) and r[1] in (8, 16)]
        if not rows:
            continue
        vec, _ = estimate_motion(video[t : t + 1].to(device), video[t - 1 : t].to(device), search=7)
        vec = vec[0].cpu()
        for w, h, x, y, dy, dx in rows:
            x0, y0 = x - w // 2, y - h // 2  # dst is the block centre
            if x0 % 8 or y0 % 8 or y0 + h > luma.shape[-2] or x0 + w > luma.shape[-1]:
                continue
            if luma[t, y0 : y0 + h, x0 : x0 + w].std() < 10 or abs(dy) > 7 or abs(dx) > 7:
                continue
            ours = vec[y0 // 8 : (y0 + h) // 8, x0 // 8 : (x0 + w) // 8].reshape(-1, 2).float()
            ref = torch.tensor([round(dy), round(dx)], dtype=torch.float32)
            total += 1
            agree += int((ours == ref).all(1).any())
            within1 += int(((ours - ref).abs().amax(1) <= 1).any())
    return {"blocks": total, "exact": round(agree / max(total, 1), 3), "within_1px": round(within1 / max(total, 1), 3)}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=48)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--chunk", type=int, default=1, help="frames per rebuild call in the speed test (1: a stream)")
    p.add_argument("--repeats", type=int, default=3, help="speed rounds; the best of each is reported")
    p.add_argument("--speed-only", action="store_true")
    p.add_argument("--save-clips", type=Path, help="decode the two speed clips to this .safetensors file and stop")
    p.add_argument(
        "--clips-file",
        type=Path,
        help="speed test on clips saved by --save-clips (no PyAV needed, e.g. on a GPU machine; no x264 figure)",
    )
    p.add_argument("--qps", default="24,30,36,42")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    qps = [int(q) for q in args.qps.split(",")]
    if args.clips_file:  # speed only, from frames decoded elsewhere
        saved = load_file(str(args.clips_file))
        report = {"device": str(device), "threads": args.threads, "frames": args.frames, "speed": {}}
        for name, frames in saved.items():
            video = frames[: args.frames].float().div(255)
            report["speed"][name] = speed(video, device, chunk=args.chunk, repeats=args.repeats, with_x264=False)
        print(json.dumps(report, indent=2))
        return report
    if args.save_clips:
        clips = {
            "bikes_640x272": decode(MEDIA / "bikes.mp4", args.frames),
            "bikes_320x240": decode(MEDIA / "bikes.mp4", args.frames, size=(240, 320)),
        }
        save_file({k: v.mul(255).round().to(torch.uint8).contiguous() for k, v in clips.items()}, str(args.save_clips))
        return {}
    bikes = decode(MEDIA / "bikes.mp4", args.frames)
    clips = {
        "bikes_640x272": (MEDIA / "bikes.mp4", bikes),
        "bikes_320x240": (None, decode(MEDIA / "bikes.mp4", args.frames, size=(240, 320))),
        "carphone_176x144": (MEDIA / "carphone_pristine.mp4", decode(MEDIA / "carphone_pristine.mp4", args.frames)),
        "bigbuckbunny_1280x720": (MEDIA / "bigbuckbunny.mp4", decode(MEDIA / "bigbuckbunny.mp4", min(args.frames, 16))),
    }
    report = {
        "device": str(device),
        "threads": args.threads,
        "frames": args.frames,
        "speed": {},
        "quality": {},
        "vectors": {},
    }
    for name in ("bikes_640x272", "bikes_320x240"):
        report["speed"][name] = speed(clips[name][1], device, chunk=args.chunk, repeats=args.repeats)
    for name, (path, video) in ({} if args.speed_only else clips).items():
        report["quality"][name] = quality(video, device, qps)
        if path is not None and name != "bikes_320x240":
            report["vectors"][name] = vector_agreement(path, video, device)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for section in ("speed", "quality", "vectors"):
            print(f"== {section}")
            for name, row in report[section].items():
                print(f"  {name}: {json.dumps(row)}")
    return report


if __name__ == "__main__":
    main()

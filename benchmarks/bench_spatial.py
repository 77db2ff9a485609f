"""Frames/s of the ComDefend spatial defense, next to the machine's matmul rate measured in the
same run, and the quality cost of each fast path. Prints a table (or JSON with --json).

Variants (all at batch ``--frames`` frames per pass):

- ``fp32 nchw``      plain PyTorch: ``model.purify`` on contiguous NCHW tensors (the baseline)
- ``fp32 cl``        SpatialDefense, float32, channels-last, whole frames
- ``fp32 cl tile32`` SpatialDefense, float32, channels-last, the official 32x32 tiling
- ``bf16 cl``        SpatialDefense, bfloat16 autocast, channels-last (CPU with native bf16, or CUDA)
- ``bf16 weights``   the model itself converted to bfloat16 (no per-call casts)
- ``compiled ...``   with --compile: torch.compile of the float32 / bf16 purify

ComDefend costs 2 * 1,565,280 = 3.13 MFLOP per pixel (counted from the conv shapes).
The matmul rate is a square float32 (and bfloat16) matmul of --matmul-size.

    python benchmarks/bench_spatial.py                          # CPU, 112x112 and 320x240
    python benchmarks/bench_spatial.py --weights src/vidshield/zoo/comdefend   # + quality columns
    python benchmarks/bench_spatial.py --device cuda --frames 256 --json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import torch

from vidshield.defenses import create_defense
from vidshield.defenses.spatial.comdefend import (
    COMCNN_CHANNELS,
    RECCNN_CHANNELS,
    ComDefend,
    cpu_supports_bf16,
    load_comdefend,
)
from vidshield.defenses.spatial.training import psnr

FLOP_PER_PIXEL = 2 * sum(
    9 * cin * cout for chans in (COMCNN_CHANNELS, RECCNN_CHANNELS) for cin, cout in zip(chans[:-1], chans[1:])
)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _seconds(fn, device, *, min_seconds: float, min_iters: int = 2) -> float:
    fn()  # warm-up (kernel selection, weight reorders, compilation)
    _sync(device)
    iters, start = 0, time.perf_counter()
    while iters < min_iters or time.perf_counter() - start < min_seconds:
        fn()
        iters += 1
    _sync(device)
    return (time.perf_counter() - start) / iters


def matmul_gflops(device: torch.device, dtype: torch.dtype, size: int, min_seconds: float) -> float:
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    return 2 * size**3 / _seconds(lambda: a @ b, device, min_seconds=min_seconds, min_iters=3) / 1e9


def variants(model: ComDefend, device: torch.device, *, compile_: bool):
    """name -> function(frames (N, 3, H, W)) -> purified frames, all in inference mode."""
    nchw = ComDefend().to(device).eval()
    nchw.load_state_dict(model.state_dict())
    half = ComDefend().to(device).eval().to(dtype=torch.bfloat16, memory_format=torch.channels_last)
    half.load_state_dict(model.state_dict())

    def defense(**kw):
        d = create_defense("spatial", model=model, batch_frames=10**6, **kw)
        return lambda x: d(x.unsqueeze(0))[0]

    out = {
        "fp32 nchw": lambda x: nchw.purify(x),
        "fp32 cl": defense(dtype="float32"),
        "fp32 cl tile32": defense(dtype="float32", tile=32),
    }
    if device.type == "cuda" or cpu_supports_bf16():
        out["bf16 cl"] = defense(dtype="bfloat16")
        out["bf16 cl tile32"] = defense(dtype="bfloat16", tile=32)
        out["bf16 weights"] = lambda x: half.purify(
            x.to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
        ).float()
    if compile_:
        fp32_compiled = torch.compile(nchw.purify)
        out["compiled fp32"] = lambda x: fp32_compiled(x)
        if "bf16 weights" in out:
            half_compiled = torch.compile(half.purify)
            out["compiled bf16"] = lambda x: half_compiled(x.to(torch.bfloat16)).float()
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--sizes", default="112x112,240x320", help="HxW list")
    parser.add_argument("--frames", type=int, default=8, help="frames per forward pass")
    parser.add_argument("--min-seconds", type=float, default=3.0)
    parser.add_argument("--matmul-size", type=int, default=2048)
    parser.add_argument(
        "--weights", default=None, help="ComDefend checkpoint: adds PSNR columns (default: random init)"
    )
    parser.add_argument("--only", default=None, help="comma-separated variant names to run")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile variants")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    device = torch.device(args.device)
    torch.manual_seed(0)
    if args.weights:
        model, _ = load_comdefend(args.weights, device=device)
    else:
        model = ComDefend().to(device).eval()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    report = {
        "device": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "load_average_1min": load,
        "cpu_bf16_kernels": cpu_supports_bf16(),
        "flop_per_pixel": FLOP_PER_PIXEL,
        "matmul_fp32_gflops": matmul_gflops(device, torch.float32, args.matmul_size, args.min_seconds),
        "matmul_bf16_gflops": matmul_gflops(device, torch.bfloat16, args.matmul_size, args.min_seconds),
        "weights": args.weights or "random init",
        "rows": [],
    }
    fns = variants(model, device, compile_=args.compile)
    if args.only:
        fns = {k: v for k, v in fns.items() if k in args.only.split(",")}
    for size in args.sizes.split(","):
        h, w = (int(v) for v in size.split("x"))
        g = torch.Generator(device=device).manual_seed(0)
        # smooth content, so that PSNR against the input means something with trained weights
        coarse = torch.rand(args.frames, 3, max(h // 8, 1), max(w // 8, 1), generator=g, device=device)
        frames = torch.nn.functional.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)
        reference = None
        for name, fn in fns.items():
            with torch.inference_mode():
                seconds = _seconds(lambda fn=fn, frames=frames: fn(frames), device, min_seconds=args.min_seconds)
                out = fn(frames).float()
            reference = out if reference is None else reference
            gflops = FLOP_PER_PIXEL * h * w * args.frames / seconds / 1e9
            report["rows"].append(
                {
                    "size": f"{w}x{h}",
                    "variant": name,
                    "frames_per_s": args.frames / seconds,
                    "gflops": gflops,
                    "of_fp32_matmul": gflops / report["matmul_fp32_gflops"],
                    "psnr_vs_input_db": float(psnr(out, frames).mean()),
                    "psnr_vs_fp32_nchw_db": float(psnr(out, reference).mean()),
                }
            )
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(
        f"device {report['device']}  torch {report['torch']}  threads {report['threads']}  "
        f"load {load}  cpu bf16 kernels {report['cpu_bf16_kernels']}"
    )
    print(
        f"matmul {args.matmul_size}^3: fp32 {report['matmul_fp32_gflops']:.0f} GFLOP/s, "
        f"bf16 {report['matmul_bf16_gflops']:.0f} GFLOP/s;  ComDefend {FLOP_PER_PIXEL / 1e6:.2f} MFLOP/pixel;  "
        f"weights: {report['weights']}"
    )
    print(
        f"{'size':>8} {'variant':<16} {'frames/s':>9} {'GFLOP/s':>8} {'% fp32 mm':>9} {'PSNR in':>8} {'PSNR fp32':>9}"
    )
    for r in report["rows"]:
        print(
            f"{r['size']:>8} {r['variant']:<16} {r['frames_per_s']:9.2f} {r['gflops']:8.0f} "
            f"{100 * r['of_fp32_matmul']:8.0f}% {r['psnr_vs_input_db']:8.2f} {r['psnr_vs_fp32_nchw_db']:9.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

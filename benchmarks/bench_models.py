"""Clips/s of the victim classifiers (inference and training) and the CNN+LSTM detection
overhead: ``forward_with_frames`` (classification + per-frame labels, one CNN pass) against
``forward`` alone. Prints JSON.

    python benchmarks/bench_models.py                    # CPU: small models (+ full models' inference at batch 1)
    python benchmarks/bench_models.py --device cuda --amp --full --batch-size 64
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch
import torch.nn.functional as F

from vidshield.models import create_model


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time(fn, device, *, warmup: int, min_seconds: float, min_iters: int) -> float:
    """Seconds per call: the fastest of several rounds (robust to other load on a shared machine)."""
    for _ in range(warmup):
        fn()
    _sync(device)
    best, total, started = float("inf"), 0, time.perf_counter()
    while total < min_iters or time.perf_counter() - started < min_seconds:
        t0 = time.perf_counter()
        fn()
        _sync(device)
        best = min(best, time.perf_counter() - t0)
        total += 1
    return best


def _ratio(fn_a, fn_b, device, *, rounds: int = 5, **timing) -> float:
    """min time of ``fn_a`` / min time of ``fn_b``, measured in alternating rounds."""
    a = b = float("inf")
    for _ in range(rounds):
        a = min(a, _time(fn_a, device, **timing))
        b = min(b, _time(fn_b, device, **timing))
    return a / b


def bench_model(name, *, batch_size, device, amp, train, min_seconds, ratio=True):
    torch.manual_seed(0)
    model = create_model(name, num_classes=10).to(device)
    spec = model.input_spec
    video = torch.rand(batch_size, spec.frames, 3, spec.height, spec.width, device=device)
    labels = torch.randint(0, 10, (batch_size,), device=device)
    autocast = torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp)
    row = {
        "model": name,
        "batch_size": batch_size,
        "input": [spec.frames, spec.height, spec.width],
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    timing = dict(device=device, warmup=2, min_seconds=min_seconds, min_iters=3)

    model.eval()
    with torch.no_grad(), autocast:
        row["inference_clips_per_s"] = batch_size / _time(lambda: model(video), **timing)
        if model.has_frame_logits and ratio:
            short = dict(timing, min_seconds=min_seconds / 5, warmup=1)
            row["detection_overhead_ratio"] = _ratio(
                lambda: model.forward_with_frames(video), lambda: model(video), **short
            )
            row["separate_paths_ratio"] = _ratio(
                lambda: (model(video), model.frame_logits(video)), lambda: model(video), **short
            )
    if train:
        model.train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

        def step():
            with autocast:
                if model.has_frame_logits:
                    logits, frames = model.forward_with_frames(video)
                    loss = F.cross_entropy(logits.float(), labels) + F.cross_entropy(
                        frames.flatten(0, 1).float(), labels.repeat_interleave(frames.shape[1])
                    )
                else:
                    loss = F.cross_entropy(model(video).float(), labels)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        row["train_clips_per_s"] = batch_size / _time(step, **timing)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--amp", action="store_true", help="bf16 autocast (CUDA)")
    parser.add_argument("--full", action="store_true", help="full-size c3d and lrcn, training included")
    parser.add_argument("--min-seconds", type=float, default=3.0)
    args = parser.parse_args()
    device = torch.device(args.device)
    rows = []
    for name in ("test-c3d", "test-lrcn", "c3d-small", "lrcn-small"):
        rows.append(
            bench_model(
                name, batch_size=args.batch_size, device=device, amp=args.amp, train=True, min_seconds=args.min_seconds
            )
        )
    if args.full:
        for name in ("c3d", "lrcn"):
            rows.append(
                bench_model(
                    name,
                    batch_size=args.batch_size,
                    device=device,
                    amp=args.amp,
                    train=True,
                    min_seconds=args.min_seconds,
                )
            )
    else:  # the full models on a CPU: inference at batch 1 only
        for name in ("c3d", "lrcn"):
            rows.append(
                bench_model(
                    name, batch_size=1, device=device, amp=False, train=False, min_seconds=args.min_seconds, ratio=False
                )
            )
    print(
        json.dumps(
            {
                "device": torch.cuda.get_device_name(device)
                if device.type == "cuda"
                else platform.processor() or "cpu",
                "threads": torch.get_num_threads(),
                "torch": torch.__version__,
                "amp": args.amp,
                "results": rows,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()

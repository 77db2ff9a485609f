"""Detection cost per video relative to classification alone, for the CNN+LSTM (LRCN).

Compares, per video, in eval mode without gradients:
- classify:           model(video)                        (the LSTM over CNN features)
- classify + detect:  model.forward_with_frames(video) + scores + exception index + routing
                      (the detector's one-pass path, TemporalConsistencyDetector.detect_with_logits)
- two passes:         model(video) and model.frame_logits(video) separately (what a model
                      without forward_with_frames costs)

Usage:
    .venv/bin/python benchmarks/bench_detection.py [--models test-lrcn lrcn-small] [--batch 4]
        [--repeats 5] [--threads 1] [--device cpu]

Prints a JSON list, one row per model: milliseconds per video and the ratio to classification.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from vidshield.detection import TemporalConsistencyDetector
from vidshield.models import create_model


def _time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench(name: str, *, batch: int, repeats: int, device: str) -> dict:
    model = create_model(name, num_classes=10).to(device).eval()
    spec = model.input_spec
    video = torch.rand(batch, spec.frames, 3, spec.height, spec.width, generator=torch.Generator().manual_seed(0)).to(
        device
    )
    det = TemporalConsistencyDetector(model, batch_size=batch)

    def sync():
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    def classify():
        with torch.no_grad():
            model(video)
        sync()

    def one_pass():
        det.detect_with_logits(video)
        sync()

    def two_passes():
        with torch.no_grad():
            model(video)
            model.frame_logits(video)
        sync()

    t_cls, t_det, t_two = (_time(f, repeats) for f in (classify, one_pass, two_passes))
    per = 1000.0 / batch
    return {
        "model": name,
        "device": device,
        "input": [spec.frames, spec.height, spec.width],
        "batch": batch,
        "classify_ms_per_video": round(t_cls * per, 3),
        "classify_and_detect_ms_per_video": round(t_det * per, 3),
        "two_passes_ms_per_video": round(t_two * per, 3),
        "detect_overhead_ratio": round(t_det / t_cls, 3),
        "two_pass_ratio": round(t_two / t_cls, 3),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["test-lrcn", "lrcn-small"])
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    rows = [bench(m, batch=args.batch, repeats=args.repeats, device=args.device) for m in args.models]
    print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()

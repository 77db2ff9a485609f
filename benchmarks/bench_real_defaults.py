"""The default detector on clean real footage it never saw: false alarms, the in-domain check,
and the detection rate on sparse attacks, with the shipped thresholds vs the paper's.

The default (``ut-lrcn`` with ``zoo/ut-lrcn.detector.json``) is calibrated on clean real videos
(``--target-fpr 0.01``). Step ``prepare`` splits the footage by whole source clips (nothing is
committed; it goes to ``--work``, default ``runs/real``):

- ``calib/``: UT-Interaction set1 (60 videos, parking lot), set2 sequences 11-16 (36 videos, lawn)
  and ``carphone_pristine.mp4`` (links): the calibration domain, real camera footage;
- ``test/``: set2 sequences 17-20 (24 videos), ``bikes.mp4`` (a street, never seen), and clips
  made from the held-out ones: re-encoded (H.264 CRF 35), centre-cropped (60 % of each side),
  resized (half size), each of ``bikes.mp4`` and six set2 test videos;
- ``ood/``: ``bigbuckbunny.mp4`` (a cartoon: not the calibration domain).

Step ``measure`` (after ``vidshield calibrate``, see the README) writes ``--out``:

- clean test videos: ``vidshield scan``'s verdict (the two-pass budget) and the windows that
  fired, with the shipped config, the paper's thresholds (0.175 / 0.3, any window fires) on
  ut-lrcn, and the old default (``synthetic-lrcn``, paper thresholds); the in-domain result;
- out-of-domain inputs: the in-domain result on ``ood/``, synthetic videos (``SyntheticActions``,
  48 frames, 240 x 320 and 64 x 64) and uniform noise (48 frames, same sizes);
- sparse attacks aimed at ut-lrcn (4 spread frames of 16, 100 Adam steps, lam 1, lr 1e-3, the
  paper's settings, quantised to 8 bits) on 16-frame clips of the held-out set2 videos at the
  model's view: share of the successful attacks flagged with each threshold set, the clean
  versions of the same clips, the in-domain result on the attacked clips, and ``scan``'s label
  after the temporal defense (shipped config) on the attacked files;
- every score side by side: its threshold for the same budget from the same calibration windows
  (``--calib-results``, the ``results.json`` of ``vidshield calibrate``), the held-out clean
  windows it fires on (``scan``'s windows: 16 frames, stride 16) and the sparse attacks it flags.

Usage (one CPU thread, a few minutes each):
    python benchmarks/bench_real_defaults.py prepare --data DATA/ut-interaction --media DATA/media
    vidshield calibrate --clean runs/real/calib --target-fpr 0.01 --score feature_spike --gamma2 1e6 \
        --model ut-lrcn --device cpu --out runs/real/calib-spike
    cp runs/real/calib-spike/detector.json src/vidshield/zoo/ut-lrcn.detector.json
    python benchmarks/bench_real_defaults.py measure --out results/real-defaults.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

CALIB_SEQUENCES = range(11, 17)  # set2 sequences used for calibration; 17-20 are held out
DERIVED_UT = 6  # held-out set2 videos that also get re-encoded / cropped / resized versions


def _sequence(path: Path) -> int:
    return int(path.stem.split("_")[1])  # UT-Interaction names: CLIP_SEQUENCE_LABEL.avi


def prepare(args) -> None:
    from vidshield.io import probe, read_frames, write_video

    work = Path(args.work)
    calib, test = work / "calib", work / "test"
    for d in (calib, test):
        d.mkdir(parents=True, exist_ok=True)
    ut = Path(args.data)
    set1 = sorted((ut / "set1").glob("*/*.avi"))
    set2 = sorted((ut / "set2").glob("*/*.avi"))
    held = [p for p in set2 if _sequence(p) not in CALIB_SEQUENCES]
    links = {calib: [*set1, *(p for p in set2 if _sequence(p) in CALIB_SEQUENCES)], test: held}
    media = Path(args.media)
    links[calib] += [media / "carphone_pristine.mp4"]
    links[test] += [media / "bikes.mp4"]
    links[work / "ood"] = [media / "bigbuckbunny.mp4"]
    (work / "ood").mkdir(exist_ok=True)
    for folder, files in links.items():
        for f in files:
            name = f"{f.parent.parent.name}-{f.name}" if f.suffix == ".avi" else f.name
            link = folder / name
            if not link.exists():
                link.symlink_to(f.resolve())
    for src in [media / "bikes.mp4", *held[:: max(1, len(held) // DERIVED_UT)][:DERIVED_UT]]:
        stem = f"{src.parent.parent.name}-{src.stem}" if src.suffix == ".avi" else src.stem
        if (test / f"{stem}-resized.mp4").exists():
            continue
        info = probe(src)
        fps, h, w = info.fps or 25.0, info.height, info.width
        crop = (int(0.6 * h) // 2 * 2, int(0.6 * w) // 2 * 2)
        write_video(test / f"{stem}-crf35.mp4", read_frames(src), fps=fps, crf=35)
        write_video(test / f"{stem}-crop.mp4", read_frames(src, crop=crop), fps=fps, crf=23)
        write_video(test / f"{stem}-resized.mp4", read_frames(src, size=(h // 4 * 2, w // 4 * 2)), fps=fps, crf=23)
    print(f"calibration: {len(list(calib.iterdir()))} videos in {calib}; test: {len(list(test.iterdir()))} in {test}")


def _scan(pipe, path):
    from vidshield.pipeline import scan_file

    r = scan_file(pipe, path)
    return {"verdict": r.verdict, "windows": len(r.windows), "fired": r.windows_fired}


def _clean_rows(test_files):
    from vidshield.detection import DetectorConfig
    from vidshield.detection.domain import check_file
    from vidshield.pipeline import build_pipeline

    shipped = build_pipeline()  # the new default: ut-lrcn with its shipped config
    paper = build_pipeline(model="ut-lrcn", config=DetectorConfig(model="ut-lrcn"))
    old = build_pipeline(model="synthetic-lrcn")
    profile = shipped.detector.config.domain_profile()
    rows = []
    for f in test_files:
        rows.append(
            {
                "file": f.name,
                "shipped": _scan(shipped, f),
                "paper_thresholds": _scan(paper, f),
                "old_default_synthetic_lrcn": _scan(old, f),
                "domain": check_file(profile, shipped.detector.model, f),
            }
        )
    return rows, shipped


def _summary(rows, key):
    windows = sum(r[key]["windows"] for r in rows)
    fired = sum(r[key]["fired"] for r in rows)
    attacked = [r["file"] for r in rows if r[key]["verdict"] != "clean"]
    return {
        "videos": len(rows),
        "videos_called_attacked": len(attacked),
        "which": attacked,
        "windows": windows,
        "windows_fired": fired,
        "window_fpr": fired / windows,
    }


def _clean_summary(rows):
    """Every threshold set on every clean video, and the shipped one on the videos in domain (the
    ones `scan` gives a verdict for; out of domain it prints a warning and defends nothing)."""
    out = {key: _summary(rows, key) for key in ("shipped", "paper_thresholds", "old_default_synthetic_lrcn")}
    out["shipped_in_domain_only"] = _summary([r for r in rows if r["domain"]["in_domain"]], "shipped")
    return out


def _ood_rows(work, model, profile):
    """The in-domain check on inputs outside the calibration domain: ``ood/`` (a cartoon),
    synthetic shape videos and uniform noise."""
    from vidshield.data.synthetic import SyntheticActions
    from vidshield.detection.domain import check_file
    from vidshield.io import is_video_file, write_video

    rows = [
        {"group": "cartoon", "file": p.name, **check_file(profile, model, p)}
        for p in sorted((work / "ood").iterdir())
        if is_video_file(p)
    ]
    for size, seed in (((240, 320), 10), ((64, 64), 11)):
        ds = SyntheticActions(5, frames=48, height=size[0], width=size[1], seed=seed)
        for i in range(len(ds)):
            path = write_video(work / "synthetic" / f"synth-{size[0]}x{size[1]}-{i}.mkv", ds[i][0], fps=25.0)
            rows.append({"group": "synthetic", "file": path.name, **check_file(profile, model, path)})
        for i in range(2):
            noise = torch.rand(48, 3, *size, generator=torch.Generator().manual_seed(100 * seed + i))
            path = write_video(work / "noise" / f"noise-{size[0]}x{size[1]}-{i}.mkv", noise, fps=25.0)
            rows.append({"group": "noise", "file": path.name, **check_file(profile, model, path)})
    return rows


def _score_comparison(args, test_files, attacks, in_domain):
    """Every score at the same budget from the same calibration windows as the shipped config:
    held-out clean windows fired (scan's windows) and successful sparse attacks flagged."""
    from vidshield.detection import DetectorConfig, TemporalConsistencyDetector, detect_file
    from vidshield.detection.calibration import fpr_threshold
    from vidshield.jsonio import read_json
    from vidshield.models import load_model

    calib = read_json(args.calib_results)
    config = DetectorConfig.load(args.config)
    used = set(config.calibration["fpr"]["calibration_videos"])
    records = [r for r in calib["videos"] if r["group"] == "clean" and r["file"] in used]
    det = TemporalConsistencyDetector.from_config(config, load_model(config.model))
    spec = det.model.input_spec
    test_windows = {f.name: detect_file(det, f, stride=spec.frames)[1] for f in test_files}
    out = {}
    for name in records[0]["window_scores"]:
        t = fpr_threshold([v for r in records for v in r["window_scores"][name]], config.target_fpr).threshold
        held = [w.scores[name] for f, ws in test_windows.items() if f in in_domain for w in ws]
        ok = [r for r in attacks if r["success"]]
        out[name] = {
            "threshold": t,
            "heldout_in_domain_windows": len(held),
            "heldout_in_domain_fired": sum(v >= t for v in held),
            "sparse_detected": sum(r["adv_scores"][name] >= t for r in ok) / max(1, len(ok)),
        }
    return out


def _attack_rows(work, model, held, args):
    from vidshield.attacks import create_attack
    from vidshield.data.transforms import model_view_chunks
    from vidshield.detection import DetectorConfig, TemporalConsistencyDetector
    from vidshield.detection.domain import check_file
    from vidshield.io import write_video
    from vidshield.pipeline import build_pipeline, scan_file

    shipped = TemporalConsistencyDetector.from_config(DetectorConfig.load(args.config), model)
    pipe = build_pipeline(model="ut-lrcn", config=args.config)
    paper = TemporalConsistencyDetector.from_config(DetectorConfig(), model)
    attack = create_attack("sparse", model, num_frames=4, steps=100, lam=1.0, lr=1e-3)
    spec = model.input_spec
    rows = []
    for f in held:
        _, clip = next(iter(model_view_chunks(f, spec, chunk_frames=spec.frames)))
        if clip.shape[0] < spec.frames:
            continue
        with torch.no_grad():
            label = int(model(clip[None]).argmax())
        adv = attack(clip[None], torch.tensor([label]), generator=torch.Generator().manual_seed(0))[0]
        adv = adv.mul(255).round().div(255).clamp(0, 1)
        with torch.no_grad():
            fooled = int(model(adv[None]).argmax()) != label
        path = write_video(work / "sparse" / f"{f.stem}.mkv", adv, fps=25.0)
        row = {"file": f.name, "label": label, "success": fooled}
        for name, det in (("shipped", shipped), ("paper_thresholds", paper)):
            a, c = det.detect(adv)[0], det.detect(clip)[0]
            row[name] = {"adv_verdict": a.verdict, "clean_verdict": c.verdict, "adv_alpha": a.alpha}
        row["adv_scores"] = dict(a.scores)
        scanned = scan_file(pipe, path)  # `scan` on the attacked file: what the temporal defense gives back
        row["scan"] = {
            "verdict": scanned.verdict,
            "rebuilt_frames": list(scanned.windows[0][1].rebuilt_frames),
            "label_before": scanned.label_before,
            "label_after": scanned.label,
        }
        row["domain"] = check_file(shipped.config.domain_profile(), model, path)
        rows.append(row)
    return rows


def measure(args) -> None:
    from vidshield.io import is_video_file

    torch.set_num_threads(1)
    started = time.perf_counter()
    work = Path(args.work)
    test_files = sorted(p for p in (work / "test").iterdir() if is_video_file(p))
    rows, shipped = _clean_rows(test_files)
    model, profile = shipped.detector.model, shipped.detector.config.domain_profile()
    ood = _ood_rows(work, model, profile)
    held_ut = sorted(p for p in (work / "test").iterdir() if p.suffix == ".avi")
    attacks = _attack_rows(work, model, held_ut, args)
    ok = [r for r in attacks if r["success"]]
    in_domain = {r["file"] for r in rows if r["domain"]["in_domain"]}
    result = {
        "commands": [
            "python benchmarks/bench_real_defaults.py prepare --data DATA/ut-interaction --media DATA/media",
            "vidshield calibrate --clean runs/real/calib --target-fpr 0.01 --score feature_spike --gamma2 1e6 "
            "--model ut-lrcn --device cpu --out runs/real/calib-spike",
            "cp runs/real/calib-spike/detector.json src/vidshield/zoo/ut-lrcn.detector.json",
            "python benchmarks/bench_real_defaults.py measure --out results/real-defaults.json",
        ],
        "load": "shared 2-core CPU, other jobs running",
        "threads": 1,
        "detector": {k: v for k, v in shipped.detector.config.to_dict().items() if k not in ("calibration", "domain")},
        "domain_ranges": profile.ranges,
        "clean_real_heldout": _clean_summary(rows),
        "clean_real_in_domain": sum(r["domain"]["in_domain"] for r in rows),
        "clean_real_heldout_ut_in_domain": [
            sum(r["domain"]["in_domain"] for r in rows if r["file"].startswith("set2")),
            sum(r["file"].startswith("set2") for r in rows),
        ],
        "clean_real_out_of_domain": [r["file"] for r in rows if not r["domain"]["in_domain"]],
        "out_of_domain_inputs_in_domain": {
            g: [sum(r["in_domain"] for r in ood if r["group"] == g), sum(r["group"] == g for r in ood)]
            for g in sorted({r["group"] for r in ood})
        },
        "sparse_attack": {
            "clips": len(attacks),
            "successful": len(ok),
            **{
                f"detected_{k}": sum(r[k]["adv_verdict"] != "clean" for r in ok) / max(1, len(ok))
                for k in ("shipped", "paper_thresholds")
            },
            **{
                f"clean_clips_flagged_{k}": sum(r[k]["clean_verdict"] != "clean" for r in attacks)
                / max(1, len(attacks))
                for k in ("shipped", "paper_thresholds")
            },
            "attacked_in_domain": sum(r["domain"]["in_domain"] for r in ok),
            "scan_label_recovered_shipped": sum(r["scan"]["label_after"] == r["label"] for r in ok) / max(1, len(ok)),
        },
        "scores_at_the_same_budget": _score_comparison(args, test_files, attacks, in_domain),
        "seconds": round(time.perf_counter() - started, 1),
        "per_video": {"clean": rows, "out_of_domain": ood, "sparse": attacks},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2, default=list) + "\n")
    short = {k: v for k, v in result.items() if k != "per_video"}
    print(json.dumps(short, indent=2, default=list))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="step", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--data", default="../shared/data/ut-interaction")
    p.add_argument("--media", default="../shared/media")
    p.add_argument("--work", default="runs/real")
    m = sub.add_parser("measure")
    m.add_argument("--work", default="runs/real")
    m.add_argument("--config", default="src/vidshield/zoo/ut-lrcn.detector.json")
    m.add_argument("--out", default="results/real-defaults.json")
    m.add_argument("--calib-results", default="runs/real/calib-spike/results.json")
    args = parser.parse_args()
    prepare(args) if args.step == "prepare" else measure(args)


if __name__ == "__main__":
    main()

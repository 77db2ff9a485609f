"""`vidshield scan` and `vidshield defend --method auto` run in process on tiny models."""

import json

import torch

from vidshield.cli import main
from vidshield.data import SyntheticActions
from vidshield.io import probe, read_video, write_video


def write_clip(path, frames=20):
    """A synthetic clip at the tiny models' view (32x32), longer than one 16-frame window."""
    video, _ = SyntheticActions(1, frames=frames, height=32, width=32, seed=3)[0]
    return write_video(path, video, fps=25.0)


def test_scan_writes_report_plot_and_defended_video(tiny_models, tmp_path, capsys):
    clip = write_clip(tmp_path / "clip.mkv")
    report, plot, defended = tmp_path / "r.json", tmp_path / "r.png", tmp_path / "d.mkv"
    rc = main(
        [
            "scan",
            str(clip),
            "--model",
            tiny_models["lrcn"],
            "--comdefend",
            tiny_models["comdefend"],
            "--report",
            str(report),
            "--plot",
            str(plot),
            "--defended",
            str(defended),
            "--json",
        ]
    )
    assert rc == 0
    printed = json.loads(capsys.readouterr().out)
    saved = json.loads(report.read_text())
    assert printed == saved and saved["num_frames"] == 20
    # two windows: frames 0-15 and 4-19 (the last one aligned to the end)
    assert [w["start"] for w in saved["windows"]] == [0, 4]
    # the report holds what the library pipeline finds on the same file, routed by the thresholds
    from vidshield.detection import VERDICTS, route
    from vidshield.pipeline import build_pipeline, scan_file
    from vidshield.routing import VERDICT_DEFENSES

    expected = scan_file(build_pipeline(model=tiny_models["lrcn"], comdefend=tiny_models["comdefend"]), clip)
    assert saved["verdict"] == expected.verdict
    assert saved["verdict"] == max((w["verdict"] for w in saved["windows"]), key=VERDICTS.index)
    for w, (_, r) in zip(saved["windows"], expected.windows):
        assert (w["alpha"], w["frame_labels"], w["verdict"]) == (r.alpha, r.frame_labels, r.verdict)
        assert w["verdict"] == route(w["alpha"], saved["gamma1"], saved["gamma2"])
        rebuilt = w["defense"] == "temporal"
        assert w["defense"] == (VERDICT_DEFENSES[w["verdict"]] if rebuilt or w["verdict"] != "sparse" else "none")
    assert (saved["label_before"], saved["label"]) == (expected.label_before, expected.label)
    # the printed report is the library's scan_report (shared with `vidshield serve`) plus the paths written
    from vidshield.pipeline import scan_report

    pipe = build_pipeline(model=tiny_models["lrcn"], comdefend=tiny_models["comdefend"])
    library = scan_report(pipe, scan_file(pipe, clip), video=str(clip), model=tiny_models["lrcn"], classifier=None)
    assert list(printed) == [*library, "report", "plot", "defended"]
    assert (printed["report"], printed["plot"], printed["defended"]) == (str(report), str(plot), str(defended))
    head = [
        "video",
        "model",
        "classifier",
        "label_space",
        "score_name",
        "gamma1",
        "gamma2",
        "vote",
        "squeeze_check",
        "target_fpr",
    ]
    assert list(library)[: len(head)] == head
    assert library["classifier"] == tiny_models["lrcn"] and library["label_space"] == pipe.classifier.class_names
    for d in (printed, library):
        for w in d["windows"]:
            del w["seconds"]
    assert {k: printed[k] for k in library} == json.loads(json.dumps(library))
    assert plot.stat().st_size > 1000
    assert probe(defended).num_frames == 20 and read_video(defended).shape == (20, 3, 32, 32)


def test_scan_rejects_a_model_without_a_frame_path(tiny_models, tmp_path, capsys):
    clip = write_clip(tmp_path / "clip.mkv")
    assert main(["scan", str(clip), "--model", tiny_models["c3d"], "--comdefend", tiny_models["comdefend"]]) == 2
    assert "per-frame path" in capsys.readouterr().err


def test_scan_reports_an_unreadable_video(tiny_models, tmp_path, capsys):
    bad = tmp_path / "bad.mp4"
    bad.write_text("not a video")
    assert main(["scan", str(bad), "--model", tiny_models["lrcn"], "--comdefend", tiny_models["comdefend"]]) == 2
    assert "bad.mp4" in capsys.readouterr().err


def test_defend_auto_and_spatial_keep_the_full_resolution(tiny_models, tmp_path, capsys):
    """`defend` detects at the model's 32x32 view but writes the video at its own 48x40 size."""
    video, _ = SyntheticActions(1, frames=18, height=40, width=48, seed=1)[0]
    clip = write_video(tmp_path / "clip.mkv", video, fps=25.0)
    out = tmp_path / "auto.mkv"
    rc = main(
        [
            "defend",
            str(clip),
            "-o",
            str(out),
            "--model",
            tiny_models["lrcn"],
            "--comdefend",
            tiny_models["comdefend"],
            "--json",
        ]
    )
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["method"] == "auto" and summary["settings"]["verdict"] in ("clean", "sparse", "dense")
    defended = read_video(out)
    assert defended.shape == (18, 3, 40, 48)
    # it defended what the scan at the model's view planned, and left every other frame bit-identical
    from vidshield.pipeline import build_pipeline, full_resolution_plan, scan_file

    pipe = build_pipeline(model=tiny_models["lrcn"], comdefend=tiny_models["comdefend"])
    temporal, spatial = full_resolution_plan(scan_file(pipe, clip))
    assert summary["polluted_frames"] == sorted(temporal) and summary["settings"]["spatial_frames"] == len(spatial)
    untouched = [t for t in range(18) if t not in temporal | spatial]
    assert untouched  # clean windows, or sparse ones with few rebuilt frames
    assert torch.equal(defended[untouched], read_video(clip)[untouched])
    out = tmp_path / "spatial.mkv"
    assert (
        main(["defend", str(clip), "-o", str(out), "--method", "spatial", "--comdefend", tiny_models["comdefend"]]) == 0
    )
    assert read_video(out).shape == (18, 3, 40, 48)


def test_scan_and_detect_see_a_non_square_file_alike(tmp_path):
    """`scan` and `detect` share the model view (short side scaled, centre crop). A 32x16 file whose
    left and right quarters are red and whose centre is green (blue on frame 3): the model's 16x16
    view is the centre, so both see a sparse attack on frame 3 (a squashed whole frame reads red)."""
    import av
    import numpy as np
    from tests.test_pipeline import ColourClassifier

    from vidshield.defenses import create_defense
    from vidshield.detection import TemporalConsistencyDetector, detect_file
    from vidshield.pipeline import DefensePipeline, scan_file

    model = ColourClassifier()  # 10 frames of 16x16; per-frame label: the dominant colour
    detector = TemporalConsistencyDetector(model, gamma1=0.05, gamma2=0.3)
    pipe = DefensePipeline(
        model, detector, temporal=create_defense("temporal"), spatial=create_defense("median"), batch_size=1
    )
    frames = np.zeros((20, 16, 32, 3), dtype=np.uint8)
    frames[..., 0] = 25
    frames[:, :, :8, 0] = frames[:, :, 24:, 0] = 255  # red quarters
    frames[:, :, 8:24, 1] = 204  # a green centre ...
    frames[3, :, 8:24, 1], frames[3, :, 8:24, 2] = 25, 204  # ... blue on frame 3
    clip = tmp_path / "wide.mkv"
    with av.open(str(clip), "w") as container:  # written with PyAV directly: FFV1, lossless RGB
        stream = container.add_stream("ffv1", rate=25)
        stream.width, stream.height, stream.pix_fmt = 32, 16, "bgr0"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode(None))
    scanned = scan_file(pipe, clip)
    summary, windows = detect_file(detector, clip, window=10, stride=10)
    assert [s for s, _ in scanned.windows] == [w.start for w in windows] == [0, 10]
    for (_, r), w in zip(scanned.windows, windows):
        assert (r.verdict, r.alpha, r.frame_labels, r.exception_frames) == (
            w.verdict,
            w.alpha,
            list(w.frame_labels),
            list(w.exception_frames),
        )
    assert scanned.verdict == summary.verdict == "sparse"
    assert scanned.frame_labels() == list(summary.frame_labels) == [1, 1, 1, 2] + [1] * 16


def test_scan_votes_by_the_models_default_and_no_vote_turns_it_off(tmp_path, capsys):
    """The shipped synthetic-lrcn votes by default; --no-vote gives the classifier's answer."""
    video, _ = SyntheticActions(1, frames=16, height=64, width=64, seed=3)[0]
    clip = write_video(tmp_path / "clip.mkv", video, fps=25.0)
    reports = {}
    for flag in ([], ["--no-vote"]):
        report = tmp_path / f"r{len(flag)}.json"
        args = ["scan", str(clip), "--model", "synthetic-lrcn", "--report", str(report)]
        assert main([*args, "--plot", str(tmp_path / "r.png"), *flag, "--json"]) == 0
        capsys.readouterr()
        reports[tuple(flag)] = json.loads(report.read_text())
    voted_report, plain_report = reports[()], reports[("--no-vote",)]
    assert voted_report["vote"] is True and plain_report["vote"] is False
    assert voted_report["squeeze_check"] is False
    (voted,), (plain,) = voted_report["windows"], plain_report["windows"]
    assert plain["label"] == max(range(len(plain["probs"])), key=plain["probs"].__getitem__)
    counts = torch.bincount(torch.tensor(voted["frame_labels"]), minlength=len(voted["probs"]))
    assert counts[voted["label"]] == counts.max()  # clean clip, no defense: the vote of the input's frames
    assert voted["defense"] == "none"
    squeezed = tmp_path / "squeezed.json"  # --squeeze-check: ComDefend on the clip routed clean
    assert main(["scan", str(clip), "--model", "synthetic-lrcn", "--report", str(squeezed), "--squeeze-check"]) == 0
    capsys.readouterr()
    both = json.loads(squeezed.read_text())
    assert both["squeeze_check"] is True and both["vote"] is True
    assert both["windows"][0]["squeezed"] is False and both["windows"][0]["label"] == voted["label"]  # a clean clip

"""The detect and calibrate commands on real (lossless) video files."""

import json

import pytest
import torch
from tests.detection.fakes import MeanColourClassifier, video_from_labels

from vidshield.cli import main

io = pytest.importorskip("vidshield.io")
models = pytest.importorskip("vidshield.models")

SIZE = 16

# 8-frame label sequences with known alpha (eighths).
CLEAN = [[0] * 8, [1] * 8, [0, 0, 0, 2, 0, 0, 0, 0]]  # 0, 0, 1/8
SPARSE = [[0, 1, 0, 0, 0, 2, 0, 0], [1, 1, 0, 1, 1, 1, 2, 1], [2, 2, 2, 0, 2, 2, 0, 2]]  # 2/8 each
DENSE = [[0, 1, 0, 1, 0, 0, 2, 0], [0, 1, 0, 1, 0, 1, 0, 0], [0, 1] * 4]  # 4/8, 5/8, 6/8


@pytest.fixture
def colour_model(monkeypatch):
    """`load_model` returns the colour classifier, whose per-frame label is the frame's colour."""
    model = MeanColourClassifier(frames=8, size=SIZE)
    monkeypatch.setattr(models, "load_model", lambda ref, device="cpu": model)
    return model


def _write_set(folder, sequences, manifest_extra=None):
    clips = []
    for i, labels in enumerate(sequences):
        name = f"clip{i}.mkv"
        io.write_video(folder / name, video_from_labels(labels, SIZE))
        clips.append({"file": name, "source": f"src{i}", "label": 0, "success": True})
    if manifest_extra is not None:
        for i, labels in enumerate(manifest_extra):
            name = f"failed{i}.mkv"
            io.write_video(folder / name, video_from_labels(labels, SIZE))
            clips.append({"file": name, "success": False})
        (folder / "manifest.json").write_text(json.dumps({"config": {"attack": "fake"}, "clips": clips}))
    return folder


def test_detect_json_on_a_file(tmp_path, colour_model, capsys):
    path = tmp_path / "clip.mkv"
    io.write_video(path, video_from_labels(SPARSE[0], SIZE))
    assert main(["detect", str(path), "--model", "fake", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    (v,) = out["videos"]
    assert (v["verdict"], v["alpha"], v["exception_frames"], v["frames"]) == ("sparse", 0.25, [1, 5], 8)
    assert out["config"]["gamma1"] == 0.175


def test_detect_long_video_streams_windows(tmp_path, colour_model, capsys):
    labels = [0] * 10 + [0, 1, 0, 0, 2, 0] + [0] * 5  # 21 frames: exceptions at 11 and 14
    path = tmp_path / "long.mkv"
    io.write_video(path, video_from_labels(labels, SIZE))
    assert main(["detect", str(path), "--model", "fake", "--json", "--window", "8", "--stride", "4"]) == 0
    (v,) = json.loads(capsys.readouterr().out)["videos"]
    assert [w["start"] for w in v["windows"]] == [0, 4, 8, 12, 13]
    assert v["exception_frames"] == [11, 14] and v["frames"] == 21 and v["verdict"] == "sparse"
    assert main(["detect", str(path), "--model", "fake", "--window", "8", "--windows"]) == 0
    assert "sparse" in capsys.readouterr().out


def test_detect_errors(tmp_path, colour_model, capsys):
    short = tmp_path / "short.mkv"
    io.write_video(short, video_from_labels([0, 1], SIZE))
    assert main(["detect", str(short), "--model", "fake"]) == 2
    assert "at least 3 frames" in capsys.readouterr().err
    assert main(["detect", str(short), "--model", "fake", "--gamma1", "0.5", "--gamma2", "0.1"]) == 2
    assert "gamma1 must not exceed gamma2" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["detect", str(tmp_path / "empty"), "--model", "fake"]) == 2
    assert "no videos found" in capsys.readouterr().err


def test_calibrate_then_detect_with_the_config(tmp_path, colour_model, capsys):
    dirs = {}
    for name, seqs, failed in (
        ("clean", CLEAN, None),
        ("sparse", SPARSE, [[0, 1] * 4]),
        ("dense", DENSE, None),
        ("other", [[0, 2, 0, 0, 1, 0, 0, 0], [2] * 8], None),
    ):
        (tmp_path / name).mkdir()
        dirs[name] = _write_set(tmp_path / name, seqs, failed)
    out = tmp_path / "calib"
    argv = [
        "calibrate",
        "--clean",
        str(dirs["clean"]),
        "--sparse",
        str(dirs["sparse"]),
        "--dense",
        str(dirs["dense"]),
        "--holdout",
        f"other={dirs['other']}",
        "--model",
        "fake",
        "--out",
        str(out),
        "--json",
    ]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    # Table 1 separates perfectly from 0.15 (clean max 1/8, adversarial min 2/8); Table 2 from 0.275.
    assert (summary["gamma1"], summary["gamma2"]) == (0.15, 0.275)
    assert summary["table1_best"]["f1"] == 1.0 and summary["table2_best"]["f1"] == 1.0
    assert summary["counts"] == {"clean": 3, "sparse": 3, "dense": 3}  # the failed clip is left out
    assert summary["auc"]["alpha"] == {"clean_vs_adversarial": 1.0, "sparse_vs_dense": 1.0}
    assert summary["holdout"]["other"]["detected_adversarial"] == 0.5
    for f in (
        "detector.json",
        "results.json",
        "report.md",
        "figures/fig2_alpha.png",
        "figures/fig3_labels.png",
        "figures/fig4_roc.png",
    ):
        assert (out / f).is_file(), f
    results = json.loads((out / "results.json").read_text())
    assert len(results["videos"]) == 11 and results["calibration"]["table1"]["best"]["threshold"] == 0.15
    assert "| 0.150 * | 100.0% | 100.0% | 100.0% |" in (out / "report.md").read_text()

    assert main(["detect", str(dirs["sparse"]), "--config", str(out / "detector.json"), "--json"]) == 0
    verdicts = [v["verdict"] for v in json.loads(capsys.readouterr().out)["videos"]]
    assert verdicts == ["sparse"] * 3 + ["dense"]  # detect keeps the failed clip (alternating -> dense)

    # Re-calibrating from the stored scores on another score needs no model and no decoding.
    out2 = tmp_path / "calib-flip"
    assert (
        main(["calibrate", "--reuse", str(out / "results.json"), "--score", "flip_rate", "--out", str(out2), "--json"])
        == 0
    )
    s2 = json.loads(capsys.readouterr().out)
    assert s2["score"] == "flip_rate" and s2["counts"] == summary["counts"]
    assert json.loads((out2 / "detector.json").read_text())["score"] == "flip_rate"

    # ... and with a false-alarm budget: gamma1 from the clean windows (3 windows, alpha 0, 0, 1/8;
    # 50 %: k = ceil(4 * 0.5) = 2, s_(2) = 0), gamma2 still Table 2's pick, every group's rate.
    out3 = tmp_path / "calib-fpr"
    reuse = ["calibrate", "--reuse", str(out / "results.json"), "--target-fpr", "0.5", "--fpr-holdout", "0"]
    assert main([*reuse, "--out", str(out3), "--json"]) == 0
    s3 = json.loads(capsys.readouterr().out)
    assert (s3["gamma1"], s3["gamma2"]) == (5e-324, 0.275)
    assert s3["fpr"]["detected"] == {
        "dense": {"videos": 3, "flagged": 1.0},
        "other": {"videos": 2, "flagged": 0.5},
        "sparse": {"videos": 3, "flagged": 1.0},
    }
    report = (out3 / "report.md").read_text()
    assert "Table 1" in report and "## False-alarm budget" in report and "k = 2 of 3 clean windows" in report
    assert json.loads((out3 / "detector.json").read_text())["target_fpr"] == 0.5


def test_calibrate_usage_errors(tmp_path, capsys):
    assert main(["calibrate", "--out", str(tmp_path / "x")]) == 2
    assert "required" in capsys.readouterr().err
    assert main(["calibrate", "--out", str(tmp_path / "x"), "--holdout", "bad", "--clean", str(tmp_path)]) == 2
    assert "NAME=DIR" in capsys.readouterr().err


def test_detect_file_matches_in_memory_detection(tmp_path):
    """A real test-lrcn: streaming the file in chunks equals detecting the decoded clip."""
    from vidshield.detection import TemporalConsistencyDetector, detect_file

    torch.manual_seed(0)
    model = models.create_model("test-lrcn", num_classes=4)
    spec = model.input_spec
    video = torch.rand(spec.frames, 3, spec.height, spec.width, generator=torch.Generator().manual_seed(0))
    path = io.write_video(tmp_path / "noise.mkv", video)
    det = TemporalConsistencyDetector(model)
    summary, windows = detect_file(det, path, chunk_frames=5)
    (direct,) = det.detect(io.read_video(path))
    assert len(windows) == 1 and summary.frame_labels == direct.frame_labels
    assert summary.alpha == direct.alpha and summary.verdict == direct.verdict


def test_calibrate_with_a_false_alarm_budget_then_detect(tmp_path, colour_model, capsys):
    """Eight clean 24-frame videos, windows of 8 every 4 frames: 5 windows each, all alpha 0. With a
    10 % budget gamma1 is the smallest double above 0; a video with one firing window of 5 stays
    clean (P(X >= 1) = 0.41), one with two is flagged (P(X >= 2) = 0.081 <= 0.1)."""
    clean = tmp_path / "clean"
    clean.mkdir()
    for i in range(8):
        io.write_video(clean / f"c{i}.mkv", video_from_labels([i % 3] * 24, SIZE))
    out = tmp_path / "calib"
    base = ["calibrate", "--clean", str(clean), "--model", "fake", "--window", "8", "--stride", "4"]
    assert main([*base, "--target-fpr", "0.1", "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["gamma1"] == 5e-324 and summary["gamma2"] == 0.3
    fpr = summary["fpr"]
    assert (fpr["calibration_windows"], fpr["heldout_windows"]) == (30, 10)  # 6 + 2 videos
    assert fpr["heldout_window_fpr"] == 0.0 and fpr["heldout_videos_flagged"] == 0
    config = json.loads((out / "detector.json").read_text())
    assert config["target_fpr"] == 0.1 and config["calibration"]["fpr"]["threshold"]["rank"] == 28  # ceil(31 * 0.9)
    report = (out / "report.md").read_text()  # the eval writers: report.md and figures/ as a full calibration
    assert "## False-alarm budget" in report and "k = 28 of 30 clean windows" in report
    assert sorted(p.name for p in (out / "figures").iterdir()) == ["fig2_alpha.png", "fig3_labels.png"]

    one, two = [0] * 24, [0] * 24
    one[2] = two[2] = two[22] = 1  # frame 2: window 0 only; frame 22: window 16 only
    for name, labels in (("one.mkv", one), ("two.mkv", two)):
        io.write_video(tmp_path / name, video_from_labels(labels, SIZE))
    argv = ["--model", "fake", "--window", "8", "--stride", "4", "--config", str(out / "detector.json"), "--json"]
    verdicts = []
    for name in ("one.mkv", "two.mkv"):
        assert main(["detect", str(tmp_path / name), *argv]) == 0
        (v,) = json.loads(capsys.readouterr().out)["videos"]
        verdicts.append((v["verdict"], sum(w["verdict"] != "clean" for w in v["windows"])))
    assert verdicts == [("clean", 1), ("sparse", 2)]

    # 1 % needs 99 clean windows in the calibration part: one clear line, status 2
    assert main([*base, "--target-fpr", "0.01", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert "30 clean window(s) are too few for a false-alarm rate of 0.01" in err and "at least 99" in err
    assert len(err.splitlines()) == 1

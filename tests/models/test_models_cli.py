import json

from vidshield.cli import main


def _json_out(capsys):
    out = capsys.readouterr().out
    return json.loads(out[out.index("{") :])


def test_models_json_lists_architectures(capsys):
    assert main(["models", "--json"]) == 0
    listing = _json_out(capsys)
    rows = {a["name"]: a for a in listing["architectures"]}
    assert {"c3d", "c3d-small", "lrcn", "lrcn-small", "test-c3d", "test-lrcn"} <= set(rows)
    assert rows["lrcn-small"]["has_frame_logits"] and not rows["c3d"]["has_frame_logits"]
    assert rows["c3d"]["input_spec"]["frames"] == 16 and rows["c3d"]["parameters_10_classes"] > 78e6 - 0.4e6
    assert isinstance(listing["shipped"], list)
    assert main(["models"]) == 0


def test_train_then_evaluate_a_tiny_model(tmp_path, capsys):
    out = tmp_path / "tiny"
    argv = [
        "train",
        "--model",
        "test-lrcn",
        "--dataset",
        "synthetic",
        "--num-videos",
        "20",
        "--test-videos",
        "10",
        "--epochs",
        "1",
        "--batch-size",
        "10",
        "--out",
        str(out),
        "--device",
        "cpu",
        "--json",
    ]
    assert main(argv) == 0
    summary = _json_out(capsys)
    assert summary["test"]["num_videos"] == 10 and 0 <= summary["test"]["top1"] <= 1 and "frame_top1" in summary["test"]
    meta = json.loads((tmp_path / "tiny.json").read_text())
    assert meta["command"].startswith("vidshield train --model test-lrcn") and "--num-videos 20" in meta["command"]
    assert meta["metrics"]["test_top1"] == summary["test"]["top1"] and meta["dataset"]["val_videos"] == 2
    assert len(meta["class_names"]) == 10 and (tmp_path / "tiny-last.safetensors").is_file()

    png = tmp_path / "confusion.png"
    argv = [
        "evaluate",
        "--model",
        str(out),
        "--num-videos",
        "10",
        "--device",
        "cpu",
        "--confusion-png",
        str(png),
        "--json",
    ]
    assert main(argv) == 0
    result = _json_out(capsys)
    assert result["top1"] == summary["test"]["top1"]  # same seed -> the same test clips
    assert len(result["confusion"]) == 10 and sum(map(sum, result["confusion"])) == 10
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["evaluate", "--model", str(out), "--num-videos", "10", "--device", "cpu"]) == 0
    assert "per-class accuracy" in capsys.readouterr().out


def test_cli_errors(tmp_path, capsys):
    assert main(["evaluate", "--model", str(tmp_path / "missing"), "--device", "cpu"]) == 2
    assert (
        f"model '{tmp_path / 'missing'}' not found: tried {tmp_path / 'missing.safetensors'}" in capsys.readouterr().err
    )
    assert main(["train", "--model", "test-c3d", "--dataset", "folder", "--out", str(tmp_path / "x")]) == 2
    assert main(["train", "--model", "nope", "--out", str(tmp_path / "x"), "--device", "cpu"]) == 2
    assert "model 'nope' not found: tried nope.safetensors, nope.json" in capsys.readouterr().err


def test_train_builds_a_motion_model_at_the_size_asked(tmp_path, capsys):
    argv = ["train", "--model", "test-c3d", "--size", "24", "24", "--motion", "--num-videos", "8", "--test-videos", "0"]
    assert main([*argv, "--epochs", "1", "--batch-size", "8", "--out", str(tmp_path / "m"), "--device", "cpu"]) == 0
    meta = json.loads((tmp_path / "m.json").read_text())
    assert meta["arch_config"] == {"motion": True, "input_size": [16, 24, 24]}
    assert meta["input_spec"]["height"] == 24 and meta["run"]["arch_config"] == meta["arch_config"]
    assert (tmp_path / "m.curve.png").is_file()
    capsys.readouterr()
    # a checkpoint's architecture is fixed: --size / --motion only build a new one
    assert main(["train", "--model", str(tmp_path / "m"), "--motion", "--out", str(tmp_path / "n")]) == 2
    assert "give an architecture as --model" in capsys.readouterr().err

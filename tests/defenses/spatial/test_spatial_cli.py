"""`vidshield train-comdefend` in process: frames files, synthetic data, errors."""

from __future__ import annotations

import json

import torch

from vidshield.cli import main
from vidshield.defenses.spatial import FrameCropSampler, SpatialDefense

TINY = ["--steps", "2", "--batch-size", "2", "--crop", "8", "--val-crops", "2", "--no-amp", "--json"]


def test_help_has_examples(capsys):
    assert main(["train-comdefend", "--help"]) == 0
    out = capsys.readouterr().out
    assert "Examples:" in out and "--frames-file" in out


def test_train_from_a_frames_file(tmp_path, capsys):
    pool = torch.randint(0, 256, (6, 16, 16, 3), dtype=torch.uint8)
    FrameCropSampler([pool]).save(tmp_path / "frames.safetensors")
    code = main(
        ["train-comdefend", "--frames-file", str(tmp_path / "frames.safetensors"), "--out", str(tmp_path / "cd"), *TINY]
    )
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["step"] == 2 and summary["weights"].endswith("cd.safetensors")
    meta = json.loads((tmp_path / "cd.json").read_text())
    assert meta["data"] == [{"frames_file": str(tmp_path / "frames.safetensors")}]
    assert "--frames-file" in meta["command"] and meta["training"]["train_frames"] == 5
    SpatialDefense(weights=tmp_path / "cd", dtype="float32")(torch.rand(1, 1, 3, 8, 8))


def test_synthetic_frames_saved_then_trained(tmp_path, capsys):
    data = ["--dataset", "synthetic", "--clips", "2", "--val-clips", "1", "--frames", "2", "--size", "24x32"]
    code = main(["train-comdefend", *data, "--save-frames", str(tmp_path / "pool"), "--steps", "0", "--json"])
    assert code == 0
    assert json.loads(capsys.readouterr().out) == {"train_frames": 4, "val_frames": 2}
    train = FrameCropSampler.load(tmp_path / "pool-train.safetensors")
    assert train.pools[0].shape == (4, 24, 32, 3)
    code = main(
        [
            "train-comdefend",
            "--frames-file",
            str(tmp_path / "pool-train.safetensors"),
            "--val-frames-file",
            str(tmp_path / "pool-val.safetensors"),
            "--out",
            str(tmp_path / "cd"),
            *TINY,
        ]
    )
    assert code == 0
    assert json.loads((tmp_path / "cd.json").read_text())["training"]["val_frames"] == 2


def test_usage_errors(tmp_path, capsys):
    assert main(["train-comdefend", "--steps", "5"]) == 2  # no --out
    assert "--out is required" in capsys.readouterr().err
    assert main(["train-comdefend", "--size", "big", "--out", str(tmp_path / "x")]) == 2
    assert (
        main(["train-comdefend", "--frames-file", str(tmp_path / "none.safetensors"), "--out", str(tmp_path / "x")])
        == 2
    )
    assert "frames file not found" in capsys.readouterr().err


def test_native_size_keeps_each_video_size(tmp_path, capsys):
    from vidshield.io.write import write_video

    sizes = [(40, 56), (48, 64)]
    for i, (h, w) in enumerate(sizes):
        (tmp_path / "videos" / "a").mkdir(parents=True, exist_ok=True)
        write_video(tmp_path / "videos" / "a" / f"v{i}.mkv", torch.rand(4, 3, h, w), fps=25)
    data = ["--dataset", "folder", "--root", str(tmp_path / "videos"), "--clips", "2", "--val-clips", "2"]
    code = main(["train-comdefend", *data, "--frames", "2", "--size", "native", "--save-frames", str(tmp_path / "p"), "--steps", "0", "--json"])  # fmt: skip
    assert code == 0
    assert json.loads(capsys.readouterr().out) == {"train_frames": 4, "val_frames": 4}
    pools = FrameCropSampler.load(tmp_path / "p-train.safetensors").pools
    assert sorted(tuple(p.shape) for p in pools) == [(2, 40, 56, 3), (2, 48, 64, 3)]
    code = main(
        ["train-comdefend", "--frames-file", str(tmp_path / "p-train.safetensors"), "--out", str(tmp_path / "cd"),
         "--crop", "32", "--val-crop", "40", "--code-weight", "0.001", "--steps", "1", "--batch-size", "2",
         "--val-crops", "2", "--no-amp", "--json"]
    )  # fmt: skip
    assert code == 0
    training = json.loads((tmp_path / "cd.json").read_text())["training"]
    assert (training["crop"], training["val_crop"], training["code_weight"]) == (32, 40, 0.001)


def test_native_size_refuses_synthetic_frames(tmp_path, capsys):
    assert main(["train-comdefend", "--size", "native", "--out", str(tmp_path / "x")]) == 2
    assert "no native size" in capsys.readouterr().err

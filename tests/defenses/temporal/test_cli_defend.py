"""`vidshield defend` end to end on a small lossless file."""

import json

import torch

from vidshield.cli import main
from vidshield.io import read_video


def test_defend_frames_json(tmp_path, lossless_video_file, capsys):
    out = tmp_path / "out.mkv"
    assert (
        main(["defend", str(lossless_video_file), "-o", str(out), "--method", "temporal", "--frames", "2,5", "--json"])
        == 0
    )
    summary = json.loads(capsys.readouterr().out)
    assert summary["polluted_frames"] == [2, 5] and summary["frames"] == 8
    original, defended = read_video(lossless_video_file), read_video(out)
    keep = [0, 1, 3, 4, 6, 7]
    assert torch.equal(original[keep], defended[keep])


def test_defend_every_and_h264(tmp_path, lossless_video_file):
    assert (
        main(
            ["defend", str(lossless_video_file), "-o", str(tmp_path / "a.mkv"), "--method", "temporal", "--every", "4"]
        )
        == 0
    )
    assert (
        main(["defend", str(lossless_video_file), "-o", str(tmp_path / "b.mkv"), "--method", "h264", "--crf", "20"])
        == 0
    )


def test_defend_usage_errors(tmp_path, lossless_video_file, capsys):
    out = str(tmp_path / "o.mkv")
    temporal = ["defend", str(lossless_video_file), "-o", out, "--method", "temporal"]
    assert main(temporal) == 2
    assert "exactly one of --frames, --every" in capsys.readouterr().err
    assert main(temporal + ["--frames", "x"]) == 2
    assert main(temporal + ["--frames", "99"]) == 2

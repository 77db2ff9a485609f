"""``vidshield synth`` in process."""

from __future__ import annotations

import json

import torch

from vidshield.cli import main
from vidshield.data import VideoFolder, make_dataset


def test_synth_writes_loadable_tree(tmp_path, capsys):
    out = tmp_path / "synth"
    args = ["synth", "--out", str(out), "--num-videos", "4", "--frames", "3", "--size", "16", "24", "--classes", "2"]
    assert main([*args, "--seed", "1", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["splits"] == {"train": 4, "test": 4}
    meta = json.loads((out / "synthetic.json").read_text())
    assert meta["classes"] == ["disc-orbit", "square-bounce"] and meta["seed"] == 1
    folder = VideoFolder(out / "test", frames=3)
    generated = make_dataset("synthetic", split="test", seed=1, num_videos=4, frames=3, size=(16, 24), num_classes=2)
    assert len(folder) == 4 and folder.classes == generated.classes
    path, _label = folder.samples[0]
    assert path.endswith("disc-orbit/test_000000.mkv")
    assert torch.equal(folder[0][0], (generated[0][0] * 255).round() / 255)


def test_synth_rejects_bad_options(tmp_path, capsys):
    assert main(["synth", "--out", str(tmp_path), "--classes", "101"]) == 2
    assert main(["synth", "--num-videos", "3"]) == 2  # --out is required
    assert not any(tmp_path.iterdir())

"""End to end on a tiny trained CNN+LSTM: train test-lrcn on synthetic clips, attack some clips
sparsely, write the sets as lossless files, calibrate with the CLI and detect with its config."""

import json

import pytest
import torch

from vidshield.cli import main

pytestmark = pytest.mark.slow


def test_trained_lrcn_calibrate_and_detect(tmp_path, capsys):
    from vidshield.attacks import PGD, SparseAttack
    from vidshield.data.synthetic import SyntheticActions
    from vidshield.detection import TemporalConsistencyDetector
    from vidshield.io import write_video
    from vidshield.models import create_model, load_model
    from vidshield.models.training import train_classifier

    torch.manual_seed(0)
    model = create_model("test-lrcn", num_classes=4)
    s = model.input_spec

    def make(n, seed):
        return SyntheticActions(n, num_classes=4, frames=s.frames, height=s.height, width=s.width, seed=seed)

    result = train_classifier(
        model, make(160, 1), make(40, 2), epochs=4, out=tmp_path / "lrcn", batch_size=16, lr=3e-3, progress=False
    )
    model = load_model(result["best_path"])
    test = make(12, 3)
    x = torch.stack([test[i][0] for i in range(len(test))])
    y = torch.tensor([test[i][1] for i in range(len(test))])
    sets = {
        "clean": x,
        "sparse": SparseAttack(model, num_frames=4, steps=30)(x, y),
        "dense": PGD(model, eps=8 / 255, steps=5)(x, y),
    }
    for name, videos in sets.items():
        for i, v in enumerate(videos):
            write_video(tmp_path / name / f"clip{i:02d}.mkv", v)

    det = TemporalConsistencyDetector(model)
    clean = det.detect(x)
    # A trained detection network labels clean frames consistently.
    assert sorted(d.alpha for d in clean)[len(clean) // 2] < 0.175
    assert sum(d.alpha for d in det.detect(sets["sparse"])) > sum(d.alpha for d in clean)

    out = tmp_path / "calib"
    argv = [
        "calibrate",
        "--clean",
        str(tmp_path / "clean"),
        "--sparse",
        str(tmp_path / "sparse"),
        "--dense",
        str(tmp_path / "dense"),
        "--model",
        str(result["best_path"]),
        "--out",
        str(out),
        "--json",
    ]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["counts"] == {"clean": 12, "sparse": 12, "dense": 12}
    assert set(summary["auc"]) >= {"alpha", "flip_rate", "js_divergence", "consensus_deviation"}
    results = json.loads((out / "results.json").read_text())
    # The files are lossless: the CLI's alphas equal the in-memory detector's on the 8-bit clips.
    clean_files = [r for r in results["videos"] if r["group"] == "clean"]
    quantised = torch.round(x * 255) / 255
    assert [r["alpha"] for r in clean_files] == [d.alpha for d in det.detect(quantised)]

    assert main(["detect", str(tmp_path / "sparse"), "--config", str(out / "detector.json"), "--json"]) == 0
    videos = json.loads(capsys.readouterr().out)["videos"]
    g1, g2 = summary["gamma1"], summary["gamma2"]
    for v in videos:
        expected = "clean" if v["alpha"] < g1 else "sparse" if v["alpha"] < g2 else "dense"
        assert v["verdict"] == expected

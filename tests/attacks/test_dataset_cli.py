import json
import re

import pytest
import torch

from vidshield.attacks import SparseAttack
from vidshield.attacks.dataset import MANIFEST_NAME, load_adversarial_set, quantize, write_adversarial_set
from vidshield.cli import main
from vidshield.data.synthetic import SyntheticActions
from vidshield.errors import DataRootError, VidshieldError
from vidshield.models import create_model, save_model


@pytest.fixture(scope="module")
def ten_class_model(tmp_path_factory):
    """An (untrained) test-lrcn for the 10-class synthetic set, saved as a checkpoint."""
    torch.manual_seed(0)
    model = create_model("test-lrcn", num_classes=10, input_size=(8, 32, 32))
    path = tmp_path_factory.mktemp("model") / "tiny"
    save_model(model, path)
    return model.eval(), path


def _header(attack):
    return {"attack": attack.name, "attack_config": attack.config(), "model": "tiny", "dataset": {"name": "synthetic"}}


def test_set_round_trip_matches_manifest(tmp_path, trained_lrcn):
    data = SyntheticActions(3, num_classes=3, frames=8, height=32, width=32, seed=4)
    attack = SparseAttack(trained_lrcn, frames=[2, 5], steps=10, lr=1e-2)
    manifest = write_adversarial_set(tmp_path, data, trained_lrcn, attack, header=_header(attack), seed=1)
    videos, labels, loaded = load_adversarial_set(tmp_path)
    assert videos.shape == (3, 8, 3, 32, 32) and labels.tolist() == [0, 1, 2]
    assert loaded["clips"] == manifest["clips"] and loaded["attack"] == "sparse"
    for k, entry in enumerate(manifest["clips"]):
        clean = quantize(data[k][0])
        assert torch.equal(videos[k][[0, 1, 3, 4, 6, 7]], clean[[0, 1, 3, 4, 6, 7]])  # exact on disk
        assert entry["perturbed_frames"] <= 2
        assert entry["linf"] == pytest.approx(float((videos[k] - clean).abs().max()), abs=1e-6)


def test_resume_refuses_a_different_attack(tmp_path, trained_lrcn):
    data = SyntheticActions(1, num_classes=3, frames=8, height=32, width=32)
    attack = SparseAttack(trained_lrcn, frames=[2], steps=2)
    write_adversarial_set(tmp_path, data, trained_lrcn, attack, header=_header(attack))
    other = SparseAttack(trained_lrcn, frames=[3], steps=2)
    with pytest.raises(VidshieldError, match="different attack_config"):
        write_adversarial_set(tmp_path, data, trained_lrcn, other, header=_header(other))


def test_load_errors(tmp_path):
    with pytest.raises(DataRootError, match="manifest.json not found"):
        load_adversarial_set(tmp_path)
    clip = {"index": 0, "file": "x.mkv", "label": 0, "pred_before": 0, "pred_after": 0, "success": False}
    clip.update(perturbed_frames=0, l21=0, linf=0, mean_abs_255=0)
    (tmp_path / MANIFEST_NAME).write_text(json.dumps({"format": "vidshield-adversarial-set/1", "clips": [clip]}))
    with pytest.raises(DataRootError, match="clip file x.mkv listed in the manifest is missing"):
        load_adversarial_set(tmp_path)


def test_cli_resume_skips_finished_clips(tmp_path, ten_class_model):
    _, path = ten_class_model
    out = tmp_path / "sparse"
    args = [
        "attack",
        "--attack",
        "sparse",
        "--model",
        str(path),
        "--num-videos",
        "6",
        "--steps",
        "3",
        "--num-frames",
        "2",
        "--out",
        str(out),
        "--json",
    ]
    assert main(args + ["--limit", "2"]) == 0
    first = {p.name: p.stat().st_mtime_ns for p in out.glob("clip_*.mkv")}
    assert sorted(first) == ["clip_000000.mkv", "clip_000001.mkv"]
    assert main(args + ["--limit", "4"]) == 0
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert [c["index"] for c in manifest["clips"]] == [0, 1, 2, 3]
    assert {name: (out / name).stat().st_mtime_ns for name in first} == first  # not recomputed
    assert manifest["attack_config"]["num_frames"] == 2 and manifest["seed"] == 0
    assert manifest["command"].startswith("vidshield")
    assert all(c["perturbed_frames"] <= 2 for c in manifest["clips"])


def test_cli_clean_export_and_dense_training(tmp_path, ten_class_model):
    _, path = ten_class_model
    clean = tmp_path / "clean"
    assert (
        main(["attack", "--attack", "none", "--model", str(path), "--num-videos", "3", "--out", str(clean), "--json"])
        == 0
    )
    _videos, _labels, manifest = load_adversarial_set(clean)
    assert all(c["perturbed_frames"] == 0 and not c["success"] for c in manifest["clips"])
    dense = tmp_path / "dense"
    assert (
        main(
            [
                "attack",
                "--attack",
                "dense",
                "--model",
                str(path),
                "--num-videos",
                "2",
                "--train-steps",
                "2",
                "--train-videos",
                "4",
                "--out",
                str(dense),
                "--json",
            ]
        )
        == 0
    )
    assert (dense / "universal.safetensors").is_file()
    _, _, manifest = load_adversarial_set(dense)
    assert all(c["linf"] <= 10 / 255 + 1e-6 for c in manifest["clips"])


def test_cli_usage_errors(tmp_path, ten_class_model, capsys):
    _, path = ten_class_model
    assert main(["attack", "--attack", "dense", "--model", str(path), "--out", str(tmp_path / "d")]) == 2
    assert "--generator" in capsys.readouterr().err
    assert main(["attack", "--attack", "sparse", "--model", str(tmp_path / "nope"), "--out", str(tmp_path / "s")]) == 2


def test_evaluate_scores_a_model_on_an_adversarial_set(tmp_path, ten_class_model, capsys):
    """`vidshield evaluate --adversarial DIR` reports the accuracy on exactly the stored clips."""
    model, path = ten_class_model
    dense = tmp_path / "dense"
    assert (
        main(
            [
                "attack",
                "--attack",
                "dense",
                "--model",
                str(path),
                "--num-videos",
                "3",
                "--train-steps",
                "2",
                "--train-videos",
                "4",
                "--out",
                str(dense),
                "--json",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["evaluate", "--model", str(path), "--adversarial", str(dense), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    videos, labels, manifest = load_adversarial_set(dense)
    with torch.no_grad():
        expected = (model(videos).argmax(1) == labels).float().mean().item()
    assert result["num_videos"] == 3 and result["top1"] == pytest.approx(expected)
    assert [c["pred_after"] for c in manifest["clips"]] == model(videos).argmax(1).tolist()


def test_evaluate_refuses_clips_of_another_size(tmp_path, ten_class_model, capsys):
    _, path = ten_class_model
    clean = tmp_path / "clean"
    assert main(["attack", "--attack", "none", "--model", str(path), "--num-videos", "2", "--out", str(clean)]) == 0
    other = save_model(create_model("test-lrcn", num_classes=10), tmp_path / "other")  # 16 x 32 x 32
    assert main(["evaluate", "--model", str(other), "--adversarial", str(clean)]) == 2
    assert "expects" in capsys.readouterr().err


def test_a_hostile_generator_gets_one_line_before_any_clip_is_attacked(tmp_path, ten_class_model, capsys):
    """NaN values, NaN generator weights, a perturbation of the wrong size for the model, a
    non-perturbation shape or range: exit 2 with one line naming the file; no clip is written."""
    from vidshield.attacks import CDUPGenerator, save_universal

    _, path = ten_class_model
    gen = CDUPGenerator(frames=8, height=32, width=32, z_dim=4, channels=(8, 8, 8, 8))
    good = gen.perturbation(seed=0)
    broken = CDUPGenerator(frames=8, height=32, width=32, z_dim=4, channels=(8, 8, 8, 8))
    with torch.no_grad():
        next(broken.parameters()).fill_(float("nan"))
    cases = {
        "nan": (torch.full_like(good, float("nan")), None, "NaN or infinite"),
        "nan-weights": (good, broken, "NaN or infinite"),
        "size": (torch.zeros(8, 3, 8, 8), None, "the perturbation is 8x8 but the model takes 32x32"),
        "shape": (torch.zeros(8, 8), None, r"not \(P, 3, H, W\)"),
        "range": (torch.full((8, 3, 32, 32), 3.0), None, "exceeds 1 in magnitude"),
    }
    for name, (perturbation, net, message) in cases.items():
        saved = save_universal(tmp_path / name, perturbation, generator_net=net)
        out = tmp_path / f"out-{name}"
        args = ["attack", "--attack", "dense", "--model", str(path), "--generator", str(saved), "--num-videos", "2"]
        assert main([*args, "--out", str(out)]) == 2, name
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and str(tmp_path / name) in err[0], (name, err)
        assert re.search(message, err[0]), (name, err)
        assert not out.exists() or not list(out.glob("*.mkv")), name

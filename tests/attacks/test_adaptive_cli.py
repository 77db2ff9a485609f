"""`vidshield attack` with the adaptive attacks: a tiny consistent-sparse and pipeline run, and the
options refused where they mean nothing."""

import json

import pytest
import torch

from vidshield.attacks.dataset import MANIFEST_NAME, load_adversarial_set, quantize
from vidshield.checkpoint import save_checkpoint
from vidshield.cli import main
from vidshield.cli.attack import ATTACK_NAMES
from vidshield.defenses.spatial import ComDefend
from vidshield.defenses.spatial.comdefend import ARCHITECTURE
from vidshield.models import create_model, save_model
from vidshield.models.datasets import dataset_for_spec


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """Untrained 10-class test-lrcn (8 x 32 x 32) and test-c3d, and a random ComDefend."""
    root = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    lrcn = save_model(create_model("test-lrcn", num_classes=10, input_size=(8, 32, 32)), root / "lrcn")
    c3d = save_model(create_model("test-c3d", num_classes=10), root / "c3d")
    comdefend = save_checkpoint(root / "comdefend", ComDefend().state_dict(), {"architecture": ARCHITECTURE})
    return {"lrcn": str(lrcn), "c3d": str(c3d), "comdefend": str(comdefend)}


def _clean_clips(n):
    spec = create_model("test-lrcn", num_classes=10, input_size=(8, 32, 32)).input_spec
    data = dataset_for_spec("synthetic", spec, split="test", num_videos=n, seed=0)
    return torch.stack([quantize(data[i][0]) for i in range(n)])


def test_every_registered_attack_is_offered():
    from vidshield.attacks import ATTACKS

    assert set(ATTACK_NAMES) - {"none"} == set(ATTACKS)


def test_consistent_sparse_from_the_cli_keeps_its_budget(checkpoints, tmp_path, capsys):
    out = tmp_path / "consistent"
    args = ["attack", "--attack", "consistent-sparse", "--model", checkpoints["lrcn"], "--num-videos", "2"]
    args += ["--steps", "3", "--restarts", "1", "--num-frames", "2", "--eps", str(4 / 255), "--out", str(out)]
    assert main([*args, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["attack"] == "consistent-sparse" and summary["clips"] == 2
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    config = manifest["attack_config"]
    assert (config["eps"], config["num_frames"], config["layout"], config["steps"]) == (4 / 255, 2, "run", 3)
    assert config["thresholds"] == {"alpha": 0.175}  # the paper's clean threshold of the known detector
    assert manifest["defender"] == {"detector": checkpoints["lrcn"], "config": None}
    videos, _, _ = load_adversarial_set(out)
    clean = _clean_clips(2)
    assert torch.equal(videos[:, 2:], clean[:, 2:])  # a run of 2 frames from frame 0; the rest bit-identical
    assert float((videos - clean).abs().max()) <= 4 / 255 + 1e-6
    assert all(c["perturbed_frames"] <= 2 for c in manifest["clips"])


def test_pipeline_attack_from_the_cli_builds_the_pipeline(checkpoints, tmp_path, capsys):
    out = tmp_path / "pipeline"
    args = ["attack", "--attack", "pipeline", "--model", checkpoints["lrcn"], "--comdefend", checkpoints["comdefend"]]
    args += ["--num-videos", "1", "--steps", "2", "--restarts", "1", "--squeeze-check", "--no-vote", "--out", str(out)]
    assert main([*args, "--json"]) == 0
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    pipeline = manifest["attack_config"]["pipeline"]
    assert (pipeline["vote"], pipeline["squeeze_check"], pipeline["strategy"]) == (False, True, "routed")
    assert manifest["defender"]["vote"] is False and manifest["defender"]["comdefend"] == checkpoints["comdefend"]
    videos, _, _ = load_adversarial_set(out)
    assert float((videos - _clean_clips(1)).abs().max()) <= 16 / 255 + 1e-6


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--attack", "consistent-sparse", "--model", "C3D"], "no per-frame path, so give --detector"),
        (["--attack", "consistent-sparse", "--model", "LRCN", "--target-class", "1"], "--target-class is only for"),
        (["--attack", "sparse", "--model", "LRCN", "--vote"], "--vote is only for --attack pipeline / spsa"),
        (["--attack", "pgd", "--model", "LRCN", "--detector", "LRCN"], "--detector is only for"),
        (["--attack", "consistent-sparse", "--model", "LRCN", "--eps", "0"], "need eps > 0"),
    ],
)
def test_options_an_attack_cannot_use_are_refused(checkpoints, tmp_path, capsys, extra, message):
    names = {"C3D": checkpoints["c3d"], "LRCN": checkpoints["lrcn"]}
    args = ["attack", *[names.get(a, a) for a in extra], "--num-videos", "1", "--out", str(tmp_path / "x")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "x" / MANIFEST_NAME).exists()

"""train-detector: distillation loss, resumable training, the served classifier's hash, and the
pairing check (scan refuses a detector trained for another classifier unless told)."""

import json

import pytest
import torch
import torch.nn.functional as F

from vidshield.checkpoint import last_state_path
from vidshield.cli import main
from vidshield.data import SyntheticActions
from vidshield.detection.train_detector import (
    PairingError,
    check_pairing,
    distillation_loss,
    train_detector,
)
from vidshield.io import write_video
from vidshield.models import create_model, load_model, save_model
from vidshield.models.adapter import classifier_hash


def test_distillation_loss_is_zero_when_every_frame_matches_the_teacher():
    teacher = torch.randn(2, 5)
    frames = teacher[:, None].expand(2, 4, 5).clone()
    assert distillation_loss(frames, teacher).abs() < 1e-6
    # the KL term is tau^2 * mean over frames of KL(p_teacher || p_frame) at temperature tau
    other = torch.randn(2, 4, 5)
    p = F.softmax(teacher / 2, -1)[:, None]
    kl = (p * (p.log() - F.log_softmax(other / 2, -1))).sum(-1).mean()
    assert torch.allclose(distillation_loss(other, teacher, tau=2.0), 4 * kl, atol=1e-6)
    labels = torch.tensor([1, 3])
    ce = F.cross_entropy(other.flatten(0, 1), labels.repeat_interleave(4))
    mixed = distillation_loss(other, teacher, tau=2.0, labels=labels, gt_weight=0.5)
    assert torch.allclose(mixed, 4 * kl + 0.5 * ce, atol=1e-6)


class Interrupt(Exception):
    pass


class StopAfter(torch.utils.data.Dataset):
    """A data set that raises after ``limit`` items (an interrupted run)."""

    def __init__(self, data, limit):
        self.data, self.limit, self.seen = data, limit, 0

    def __len__(self):
        return len(self.data)

    def __getitem__(self, i):
        self.seen += 1
        if self.seen > self.limit:
            raise Interrupt
        return self.data[i]


def _student(seed=0):
    torch.manual_seed(seed)
    return create_model("test-lrcn", num_classes=10, input_size=(16, 24, 24))  # its own 24x24 view


@pytest.fixture(scope="module")
def classifier():
    torch.manual_seed(1)
    return create_model("test-c3d", num_classes=10).eval()  # 16 x 32 x 32


def test_resumed_training_equals_an_uninterrupted_run(tmp_path, classifier):
    data = SyntheticActions(12, frames=16, height=32, width=32, seed=5)
    kw = dict(epochs=2, batch_size=4, classifier_ref="c", progress=False, seed=3)
    whole = _student()
    train_detector(whole, classifier, data, out=tmp_path / "whole", **kw)

    part = _student()
    with pytest.raises(Interrupt):
        train_detector(part, classifier, StopAfter(data, 12 + 5), out=tmp_path / "part", **kw)
    assert last_state_path(tmp_path / "part").is_file()
    resumed = _student(seed=99)  # different initial weights: the state must replace them
    result = train_detector(resumed, classifier, data, out=tmp_path / "part", resume=True, **kw)
    assert result["epochs_run"] == 1 and [h["epoch"] for h in result["history"]] == [1, 2]
    for (k, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), k
    saved = load_model(tmp_path / "part")
    assert saved.metadata["serves"]["sha256"] == classifier_hash(classifier)
    assert saved.metadata["kind"] == "distilled-detector" and saved.input_spec.height == 24


def test_pairing_check(tmp_path, classifier):
    det = _student()
    det.metadata = {"serves": {"ref": "c", "sha256": classifier_hash(classifier)}}
    assert check_pairing(det, classifier) == "paired"
    assert check_pairing(det, det) == "same-model"
    other = create_model("test-c3d", num_classes=10)
    with pytest.raises(PairingError, match="trained for classifier 'c'.*--allow-mismatch"):
        check_pairing(det, other)
    assert check_pairing(det, other, allow_mismatch=True) == "mismatch-allowed"
    assert check_pairing(_student(), other) == "unrecorded"  # a CNN+LSTM that records no classifier


def test_cli_trains_then_scan_pairs_or_refuses(tmp_path, classifier, capsys):
    clf_path = save_model(classifier, tmp_path / "clf")
    out = tmp_path / "det"
    argv = ["train-detector", "--classifier", str(clf_path), "--arch", "test-lrcn", "--size", "16"]
    argv += ["--num-videos", "8", "--test-videos", "4", "--epochs", "1", "--batch-size", "4", "--no-augment"]
    assert main([*argv, "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["serves"]["sha256"] == classifier_hash(load_model(clf_path))
    assert summary["ground_truth_used"] is False  # the test classifier names no classes
    assert 0 <= summary["test"]["frame_agreement"] <= 1 and summary["test"]["clips"] == 4
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["input_spec"]["height"] == 16 and meta["metrics"]["clips"] == 4

    video, _ = SyntheticActions(1, frames=16, height=32, width=32, seed=3)[0]
    clip = write_video(tmp_path / "clip.mkv", video, fps=25.0)
    comdefend = _tiny_comdefend(tmp_path)
    scan = ["scan", str(clip), "--model", str(out), "--comdefend", comdefend, "--report", str(tmp_path / "r.json")]
    scan += ["--plot", str(tmp_path / "r.png"), "--json"]
    assert main(scan) == 0  # the served classifier is loaded from the detector's record
    report = json.loads(capsys.readouterr().out)
    assert report["classifier"] == str(clf_path)
    torch.manual_seed(7)
    other = save_model(create_model("test-c3d", num_classes=10), tmp_path / "other")
    assert main([*scan, "--classifier", str(other)]) == 2
    err = capsys.readouterr().err
    assert "trained for classifier" in err and len(err.strip().splitlines()) == 1
    assert main([*scan, "--classifier", str(other), "--allow-mismatch"]) == 0


def _tiny_comdefend(tmp_path):
    from vidshield.checkpoint import save_checkpoint
    from vidshield.defenses.spatial.comdefend import ARCHITECTURE, ComDefend

    return str(save_checkpoint(tmp_path / "comdefend", ComDefend().state_dict(), {"architecture": ARCHITECTURE}))


def test_resume_refuses_another_commands_training_state(tmp_path, classifier):
    """One training-state format for every loop: a state not written by train-detector (here one
    of `vidshield train`, which has no "kind") is refused before anything is restored."""
    from vidshield.checkpoint import save_training_state
    from vidshield.errors import CheckpointError
    from vidshield.models.checkpoints import model_metadata

    student = _student()
    optimizer = torch.optim.AdamW(student.parameters())
    meta = {"model": model_metadata(student), "epoch": 1, "history": [{}], "settings": {"epochs": 2}}
    save_training_state(last_state_path(tmp_path / "d"), model=student, optimizer=optimizer, metadata=meta)
    data = SyntheticActions(4, frames=16, height=32, width=32, seed=5)
    with pytest.raises(CheckpointError, match="not of `vidshield train-detector`"):
        train_detector(_student(), classifier, data, out=tmp_path / "d", epochs=2, resume=True, progress=False)

"""Adversarial training of the detection network (train-detector --adversarial-eps): the PGD
examples keep their budget, training sees them (the teacher the clean clip), and the options are
recorded and checked on resume."""

import json

import pytest
import torch
import torch.nn.functional as F

import vidshield.detection.train_detector as td
from vidshield.data import SyntheticActions
from vidshield.errors import CheckpointError
from vidshield.models import create_model
from vidshield.models.adapter import resample_video


def _student(seed=0):
    torch.manual_seed(seed)
    return create_model("test-lrcn", num_classes=10, input_size=(16, 24, 24))


@pytest.fixture(scope="module")
def classifier():
    torch.manual_seed(1)
    return create_model("test-c3d", num_classes=10).eval()  # 16 x 32 x 32


def _frame_ce(model, video, labels):
    f = model.frame_logits(resample_video(video, model.input_spec, time=False))
    return F.cross_entropy(f.flatten(0, 1), labels.repeat_interleave(f.shape[1]))


def test_frame_pgd_keeps_its_budget_and_raises_the_per_frame_loss():
    data = SyntheticActions(3, frames=16, height=32, width=32, seed=2)
    x = torch.stack([data[i][0] for i in range(3)])
    y = torch.tensor(data.labels[:3])
    model = _student().train()
    eps = 8 / 255
    torch.manual_seed(0)
    adv = td.frame_pgd(model, x, y, eps=eps, steps=4)
    assert (adv - x).abs().max() <= eps + 1e-6
    assert adv.min() >= 0 and adv.max() <= 1
    assert (adv - x).abs().max() > eps / 2  # it moved
    assert model.training  # the mode is restored
    with torch.no_grad():
        assert _frame_ce(model.eval(), adv, y) > _frame_ce(model, x, y)
    with pytest.raises(ValueError, match="eps > 0"):
        td.frame_pgd(model, x, y, eps=0.0, steps=1)


def test_adversarial_training_feeds_pgd_examples_with_a_clean_teacher_and_records_the_options(
    tmp_path, classifier, monkeypatch
):
    data = SyntheticActions(8, frames=16, height=32, width=32, seed=5)
    clean = torch.stack([data[i][0] for i in range(8)])
    with torch.no_grad():
        clean_teacher = classifier(clean).float()
    seen = []
    real = td._student_loss

    def spy(student, videos, teacher, labels, **kw):
        seen.append((videos.detach().clone(), teacher.detach().clone()))
        return real(student, videos, teacher, labels, **kw)

    monkeypatch.setattr(td, "_student_loss", spy)
    eps = 6 / 255
    kw = dict(epochs=1, batch_size=4, classifier_ref="c", progress=False, seed=3, adversarial_steps=2)
    td.train_detector(_student(), classifier, data, out=tmp_path / "adv", adversarial_eps=eps, **kw)
    assert len(seen) == 2
    for videos, teacher in seen:
        for v, t in zip(videos, teacher):
            # the teacher is the classifier on one clean clip; the student got that clip's PGD example
            i = int(((clean_teacher - t).abs().amax(1)).argmin())
            assert torch.allclose(clean_teacher[i], t, atol=1e-5)
            d = (v - clean[i]).abs().max()
            assert 0 < d <= eps + 1e-6 and v.min() >= 0 and v.max() <= 1
    meta = json.loads((tmp_path / "adv.json").read_text())
    assert meta["training"]["adversarial_eps"] == eps and meta["training"]["adversarial_steps"] == 2

    seen.clear()  # off: the student gets the clean clips themselves
    td.train_detector(_student(), classifier, data, out=tmp_path / "plain", **kw)
    assert all(any(torch.equal(v, c) for c in clean) for videos, _ in seen for v in videos)
    assert json.loads((tmp_path / "plain.json").read_text())["training"]["adversarial_eps"] == 0.0

    # a resumed run must have the same adversarial settings
    with pytest.raises(CheckpointError, match="settings differ .*adversarial_eps"):
        td.train_detector(_student(), classifier, data, out=tmp_path / "adv", resume=True, **kw)


def test_cli_records_adversarial_training_and_its_start(tmp_path, classifier, capsys):
    from vidshield.cli import main
    from vidshield.models import load_model, save_model

    clf_path = save_model(classifier, tmp_path / "clf")
    torch.manual_seed(4)
    start = save_model(create_model("test-lrcn", num_classes=10, input_size=(16, 16, 16)), tmp_path / "start")
    out = tmp_path / "det"
    argv = ["train-detector", "--classifier", str(clf_path), "--arch", "test-lrcn", "--init", str(start)]
    argv += ["--num-videos", "4", "--test-videos", "2", "--epochs", "1", "--batch-size", "4", "--no-augment"]
    argv += ["--adversarial-eps", "0.02", "--adversarial-steps", "1", "--out", str(out), "--json"]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["test"]["attack_eps"] == 0.02 and 0 <= summary["test"]["robust_frame_agreement"] <= 1
    meta = load_model(out).metadata
    assert (meta["training"]["adversarial_eps"], meta["training"]["adversarial_steps"]) == (0.02, 1)
    assert meta["initialised_from"] == str(start) and meta["input_spec"]["height"] == 16  # the start's view
    assert main([*argv[:-3], "--size", "24", "--out", str(tmp_path / "other")]) == 2  # not the start's view
    assert "--init" in capsys.readouterr().err

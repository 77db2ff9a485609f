import json

import pytest
import torch

from vidshield.checkpoint import last_state_path
from vidshield.errors import CheckpointError
from vidshield.models import create_model, load_model
from vidshield.models.evaluation import classification_metrics, evaluate_classifier
from vidshield.models.training import train_classifier


def test_classification_metrics_on_known_logits():
    logits = torch.tensor([[3.0, 1, 0, 2], [0, 3, 1, 2], [1, 2, 3, 0], [3, 2, 1, 0], [0, 1, 2, 3]])
    labels = torch.tensor([0, 1, 1, 1, 0])
    m = classification_metrics(logits, labels, class_names=["a", "b", "c", "d"])
    assert m["top1"] == pytest.approx(2 / 5) and m["top5"] == 1.0 and m["num_videos"] == 5
    assert m["confusion"] == [[1, 0, 0, 1], [1, 1, 1, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    assert [r["accuracy"] for r in m["per_class"]] == [0.5, pytest.approx(1 / 3), None, None]
    top2 = classification_metrics(logits[:, :3], labels)  # K = 3: top-5 means top-3
    assert top2["top5"] == 1.0
    with pytest.raises(ValueError, match="class names"):
        classification_metrics(logits, labels, class_names=["a"])


def test_short_training_run_learns_the_blobs(tmp_path, blobs):
    torch.manual_seed(0)
    model = create_model("test-lrcn", num_classes=2)
    result = train_classifier(
        model, blobs(32, seed=0), blobs(16, seed=1), epochs=6, out=tmp_path / "m", batch_size=8, lr=3e-3, progress=False
    )
    losses = [h["train_loss"] for h in result["history"]]
    assert losses[-1] < 0.5 * losses[0]
    best = load_model(result["best_path"])
    assert best.class_names == ["dark", "bright"] and best.metadata["metrics"]["epoch"] == result["best"]["epoch"]
    test = evaluate_classifier(best, blobs(16, seed=2), batch_size=8)
    assert test["top1"] >= 0.9 and test["frame_top1"] >= 0.9


class InterruptAfter(torch.utils.data.Dataset):
    """Raises after ``limit`` items have been read, like a run killed mid-epoch."""

    def __init__(self, dataset, limit):
        self.dataset, self.limit, self.reads = dataset, limit, 0
        self.classes = dataset.classes

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        self.reads += 1
        if self.reads > self.limit:
            raise KeyboardInterrupt
        return self.dataset[i]


def test_resume_continues_from_the_saved_epoch_and_matches_an_uninterrupted_run(tmp_path, blobs):
    train, val = blobs(16, seed=0), blobs(8, seed=1)
    kwargs = dict(epochs=3, batch_size=8, lr=3e-3, seed=5, progress=False)
    torch.manual_seed(0)
    reference = create_model("test-lrcn", num_classes=2, dropout=0.5)
    train_classifier(reference, train, val, out=tmp_path / "ref", **kwargs)

    torch.manual_seed(0)
    model = create_model("test-lrcn", num_classes=2, dropout=0.5)
    with pytest.raises(KeyboardInterrupt):  # dies during the third epoch
        train_classifier(model, InterruptAfter(train, 2 * 16 + 3), val, out=tmp_path / "run", **kwargs)
    saved = json.loads(last_state_path(tmp_path / "run").with_suffix(".json").read_text())
    assert saved["epoch"] == 2

    torch.manual_seed(99)  # a different initialisation: everything must come from the checkpoint
    resumed = create_model("test-lrcn", num_classes=2, dropout=0.5)
    result = train_classifier(resumed, train, val, out=tmp_path / "run", resume=True, **kwargs)
    assert result["epochs_run"] == 1 and [h["epoch"] for h in result["history"]] == [1, 2, 3]
    for (name, a), (_, b) in zip(reference.state_dict().items(), resumed.state_dict().items()):
        assert torch.allclose(a, b, atol=1e-6), name


def test_resume_refuses_a_different_run(tmp_path, blobs):
    train = blobs(8)
    train_classifier(
        create_model("test-lrcn", num_classes=2), train, epochs=1, out=tmp_path / "m", batch_size=8, progress=False
    )
    with pytest.raises(CheckpointError, match="made for 1 epochs"):
        train_classifier(
            create_model("test-lrcn", num_classes=2), train, epochs=2, out=tmp_path / "m", resume=True, progress=False
        )
    with pytest.raises(CheckpointError, match="architecture"):
        train_classifier(
            create_model("test-c3d", num_classes=2), train, epochs=1, out=tmp_path / "m", resume=True, progress=False
        )


def test_bad_arguments(tmp_path, blobs):
    with pytest.raises(ValueError, match="class names"):
        train_classifier(
            create_model("test-c3d", num_classes=3), blobs(4), epochs=1, out=tmp_path / "m", progress=False
        )
    with pytest.raises(ValueError, match="epochs"):
        train_classifier(
            create_model("test-c3d", num_classes=2), blobs(4), epochs=0, out=tmp_path / "m", progress=False
        )


def test_label_smoothing_is_applied_to_video_and_frame_losses(blobs):
    from vidshield.models.training import classification_loss

    torch.manual_seed(0)
    model = create_model("test-lrcn", num_classes=2).eval()
    videos, labels = torch.stack([blobs(2, seed=0)[i][0] for i in range(2)]), torch.tensor([0, 1])
    logits, frame_logits = model.forward_with_frames(videos)

    def smoothed(z, y, eps):  # (1 - eps) * CE + eps * mean over classes of -log p
        logp = z.log_softmax(dim=-1)
        return ((1 - eps) * -logp.gather(1, y[:, None])[:, 0] - eps * logp.mean(dim=-1)).mean()

    t = frame_logits.shape[1]
    expected = smoothed(logits, labels, 0.2) + 0.5 * smoothed(
        frame_logits.flatten(0, 1), labels.repeat_interleave(t), 0.2
    )
    loss, out = classification_loss(model, videos, labels, frame_loss_weight=0.5, label_smoothing=0.2)
    assert torch.allclose(loss, expected, atol=1e-5) and torch.equal(out, logits)
    plain, _ = classification_loss(model, videos, labels, frame_loss_weight=0.5)
    assert not torch.allclose(plain, loss)
    with pytest.raises(ValueError, match="label_smoothing"):
        train_classifier(model, blobs(2, seed=0), epochs=1, out="unused", label_smoothing=1.0)


def test_training_draws_its_learning_curve_every_epoch(tmp_path, blobs):
    from PIL import Image

    from vidshield.models.training import format_duration, learning_curve_path

    torch.manual_seed(0)
    out = tmp_path / "m"
    curve = learning_curve_path(out)
    assert curve == tmp_path / "m.curve.png"
    train_classifier(
        create_model("test-lrcn", num_classes=2), blobs(16, seed=0), blobs(8, seed=1), epochs=1, out=out,
        batch_size=8, progress=False,
    )  # fmt: skip
    with Image.open(curve) as im:
        assert im.format == "PNG" and im.width > 300
    assert (format_duration(12.4), format_duration(250), format_duration(3900)) == ("12s", "4m 10s", "1h 05m")


def test_select_last_keeps_the_last_epoch_whatever_validation_says(tmp_path, blobs):
    torch.manual_seed(0)
    result = train_classifier(
        create_model("test-lrcn", num_classes=2), blobs(16, seed=0), blobs(8, seed=1), epochs=3, out=tmp_path / "m",
        batch_size=8, progress=False, select="last",
    )  # fmt: skip
    assert result["best"]["epoch"] == 3 and all("val_top1" in h for h in result["history"])
    assert load_model(result["best_path"]).metadata["metrics"]["epoch"] == 3
    with pytest.raises(ValueError, match="select"):
        train_classifier(create_model("test-lrcn", num_classes=2), blobs(8, seed=0), epochs=1, out=tmp_path / "n",
                         select="first", progress=False)  # fmt: skip

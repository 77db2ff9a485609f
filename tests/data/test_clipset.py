import pytest
import torch

from vidshield.cli import main
from vidshield.data import ClipSet, make_dataset
from vidshield.errors import DataRootError


def test_pack_then_serve_round_trip(tmp_path):
    assert (
        main(
            [
                "pack",
                "--dataset",
                "synthetic",
                "--num-videos",
                "4",
                "--frames",
                "8",
                "--size",
                "20",
                "20",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    test = make_dataset("clips", root=tmp_path, split="test", frames=8, size=(20, 20))
    reference = make_dataset("synthetic", split="test", num_videos=4, frames=8, size=(20, 20))
    assert len(test) == 4 and test.classes == reference.classes
    for i in range(4):
        v, y = test[i]
        w, z = reference[i]
        assert y == z and torch.equal(v, w.mul(255).round().div(255))  # exact, up to 8-bit storage


def test_training_view_samples_crops_and_flips(tmp_path):
    assert (
        main(
            [
                "pack",
                "--dataset",
                "synthetic",
                "--split",
                "train",
                "--num-videos",
                "2",
                "--frames",
                "12",
                "--size",
                "24",
                "24",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    ds = ClipSet(tmp_path / "train.safetensors", frames=6, size=(16, 16), augment=True)
    torch.manual_seed(0)
    clips = [ds[0][0] for _ in range(6)]
    assert all(c.shape == (6, 3, 16, 16) and c.min() >= 0 and c.max() <= 1 for c in clips)
    assert any(not torch.equal(clips[0], c) for c in clips[1:])  # random views differ


def test_missing_or_too_small_clip_sets_are_refused(tmp_path):
    with pytest.raises(DataRootError, match="vidshield pack"):
        ClipSet(tmp_path / "nope.safetensors", frames=4, size=(8, 8))
    main(
        [
            "pack",
            "--dataset",
            "synthetic",
            "--split",
            "test",
            "--num-videos",
            "1",
            "--frames",
            "4",
            "--size",
            "16",
            "16",
            "--out",
            str(tmp_path),
        ]
    )
    with pytest.raises(DataRootError, match="smaller"):
        ClipSet(tmp_path / "test.safetensors", frames=4, size=(24, 24))

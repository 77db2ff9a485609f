"""UT-Interaction's leave-one-sequence-out protocol: the folds, the data sets built from them, and
``vidshield train --protocol loso`` on a tiny fake UT-Interaction made here."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from vidshield.cli import main
from vidshield.data import UT_INTERACTION_CLASSES, UT_SET_SEQUENCES, ClipSet, UTInteraction, loso_fold, parse_folds
from vidshield.errors import DataRootError
from vidshield.io import write_video
from vidshield.models import create_model
from vidshield.models.datasets import loso_datasets
from vidshield.models.evaluation import fold_summary


def _set_sequences(set_id: int, clips_per_sequence: int = 6) -> list[int]:
    """The sequence number of every clip of a set, class-major like UTInteraction lists them."""
    return [s for _ in range(clips_per_sequence) for s in UT_SET_SEQUENCES[set_id]]


@pytest.mark.parametrize("set_id", [1, 2])
def test_folds_are_disjoint_cover_the_set_and_keep_the_test_sequence_out_of_validation(set_id):
    sequences = _set_sequences(set_id)
    tested = []
    for fold in UT_SET_SEQUENCES[set_id]:
        f = loso_fold(sequences, fold)
        train, val, test = set(f.train), set(f.val), set(f.test)
        assert not (train & val or train & test or val & test)
        assert train | val | test == set(range(len(sequences)))
        assert {sequences[i] for i in test} == {fold} and len(test) == 6
        assert fold not in {sequences[i] for i in val} | {sequences[i] for i in train}
        assert {sequences[i] for i in val} == {f.val_sequence} != {fold}
        assert {sequences[i] for i in train} == set(f.train_sequences) and len(f.train_sequences) == 8
        tested.append(f.test_sequence)
    assert sorted(tested) == list(UT_SET_SEQUENCES[set_id])  # every sequence is the test fold once
    assert loso_fold(sequences, UT_SET_SEQUENCES[set_id][-1]).val_sequence == UT_SET_SEQUENCES[set_id][0]


def test_fold_errors():
    with pytest.raises(ValueError, match="1-20"):
        loso_fold(_set_sequences(1), 21)
    with pytest.raises(DataRootError, match="set1"):
        loso_fold(_set_sequences(1) + [11], 3)  # a set2 clip among set1's
    with pytest.raises(DataRootError, match="sequence 4"):
        loso_fold([s for s in _set_sequences(1) if s != 4], 3)  # no validation clip


def test_parse_folds():
    assert parse_folds("3") == [3]
    assert parse_folds("1,4, 11-13,4") == [1, 4, 11, 12, 13]
    assert parse_folds("set2") == list(range(11, 21)) and parse_folds("all") == list(range(1, 21))
    for bad in ("0", "5-2", "21", "x", "1-"):
        with pytest.raises(ValueError):
            parse_folds(bad)


def test_fold_summary_mean_and_spread():
    folds = [
        {"fold": 2, "set": 1, "test_top1": 0.5, "test_frame_top1": 0.4},
        {"fold": 1, "set": 1, "test_top1": 1.0, "test_frame_top1": 0.6},
        {"fold": 11, "set": 2, "test_top1": 0.0, "test_frame_top1": 0.2},
    ]
    s = fold_summary(folds)
    assert [f["fold"] for f in s["folds"]] == [1, 2, 11]
    assert s["sets"]["set1"] == {
        "folds": 2, "mean_top1": 0.75, "std_top1": 0.25, "min_top1": 0.5, "max_top1": 1.0,
        "mean_frame_top1": pytest.approx(0.5),
    }  # fmt: skip
    assert s["sets"]["all"]["mean_top1"] == pytest.approx(0.5) and s["sets"]["set2"]["std_top1"] == 0.0


@pytest.fixture
def fake_ut(tmp_path):
    """A UT-like folder: every sequence 1-20 with two 4-frame clips (classes ``s % 6`` and
    ``(s + 1) % 6``), named ``<clip>_<sequence>_<label>.avi``."""
    root = tmp_path / "ut"
    clip = 1
    for set_id, sequences in UT_SET_SEQUENCES.items():
        for name in UT_INTERACTION_CLASSES:
            (root / f"set{set_id}" / name).mkdir(parents=True)
        for seq in sequences:
            for label in (seq % 6, (seq + 1) % 6):
                g = torch.Generator().manual_seed(clip)
                video = torch.randint(0, 256, (4, 3, 24, 32), generator=g).float() / 255
                write_video(root / f"set{set_id}" / UT_INTERACTION_CLASSES[label] / f"{clip}_{seq}_{label}.avi", video)
                clip += 1
    return root


def test_loso_datasets_from_files_and_from_a_pack(fake_ut, tmp_path):
    spec = create_model("test-lrcn", num_classes=6).input_spec
    train, val, test, classes, info = loso_datasets("ut-interaction", spec, 13, root=fake_ut, augment=False)
    full = UTInteraction(fake_ut, split="test", frames=spec.frames)
    seq = full.sequences
    assert classes == list(UT_INTERACTION_CLASSES) and info["set"] == 2 and info["val_sequence"] == 14
    assert {seq[i] for i in test.indices} == {13} and {seq[i] for i in val.indices} == {14}
    assert {seq[i] for i in train.indices} == set(range(11, 21)) - {13, 14}
    assert sorted(full.samples[i][1] for i in test.indices) == sorted([13 % 6, 14 % 6])

    pack = tmp_path / "pack"
    args = ["pack", "--dataset", "ut-interaction", "--root", str(fake_ut), "--frames", "4", "--size", "32", "32"]
    assert main([*args, "--out", str(pack)]) == 0
    assert ClipSet(pack / "train.safetensors", frames=4, size=(32, 32)).sequences == UTInteraction(fake_ut).sequences
    p_train, p_val, p_test, _, p_info = loso_datasets("clips", spec, 13, root=pack, augment=True, strong_augment=True)
    assert (p_train.indices, p_val.indices, p_test.indices) == (train.indices, val.indices, test.indices)
    assert p_info == info
    video, label = p_train[0]
    assert label == full.samples[train.indices[0]][1]
    assert video.shape == (spec.frames, 3, spec.height, spec.width) and 0 <= video.min() <= video.max() <= 1

    bare = tmp_path / "bare"  # a clip set without sequence numbers (packed before they were kept)
    assert main(["pack", "--dataset", "synthetic", "--num-videos", "2", "--frames", "4", "--out", str(bare)]) == 0
    with pytest.raises(DataRootError, match="no sequence numbers"):
        loso_datasets("clips", spec, 1, root=bare)
    with pytest.raises(DataRootError, match="loso"):
        loso_datasets("synthetic", spec, 1)


def test_train_loso_runs_folds_summarises_and_skips_finished_ones(fake_ut, tmp_path, capsys):
    pack, out = tmp_path / "pack", tmp_path / "loso"
    args = ["pack", "--dataset", "ut-interaction", "--root", str(fake_ut), "--frames", "8", "--size", "32", "32"]
    assert main([*args, "--out", str(pack)]) == 0
    train = ["train", "--model", "test-lrcn", "--dataset", "clips", "--root", str(pack), "--protocol", "loso"]
    train += ["--epochs", "1", "--batch-size", "4", "--device", "cpu", "--out", str(out), "--json"]
    capsys.readouterr()
    assert main([*train, "--fold", "10,11"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert [(f["fold"], f["set"], f["val_sequence"]) for f in summary["folds"]] == [(10, 1, 1), (11, 2, 12)]
    assert set(summary["sets"]) == {"set1", "set2", "all"} and summary["sets"]["all"]["folds"] == 2
    assert json.loads((out / "summary.json").read_text()) == summary
    meta = json.loads((out / "fold-10.json").read_text())
    assert meta["dataset"]["test_sequence"] == 10 and meta["dataset"]["train_sequences"] == [2, 3, 4, 5, 6, 7, 8, 9]
    assert meta["dataset"]["test_videos"] == 2 and meta["metrics"]["test_top1"] == summary["folds"][0]["test_top1"]
    assert 0 <= meta["metrics"]["test_frame_top1"] <= 1 and "test_clean_alpha" in meta["metrics"]

    again = tmp_path / "again"  # the same seed gives the same weights (strong augmentation included)
    strong = ["--strong-augment", "--clips-per-video", "2", "--label-smoothing", "0.1", "--fold", "10"]
    for folder in (again, again.with_name("again2")):
        assert main([*train[:-3], "--out", str(folder), "--json", *strong]) == 0
    a, b = (load_file(folder / "fold-10.safetensors") for folder in (again, again.with_name("again2")))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    capsys.readouterr()

    stamp = (out / "fold-10.safetensors").stat().st_mtime_ns
    assert main([*train, "--fold", "10-12"]) == 0  # 10 and 11 are done: only 12 trains
    summary = json.loads(capsys.readouterr().out)
    assert [f["fold"] for f in summary["folds"]] == [10, 11, 12]
    assert (out / "fold-10.safetensors").stat().st_mtime_ns == stamp

    assert main([*train, "--fold", "10", "--label-smoothing", "0.1"]) == 2  # other settings, same folder
    assert "other settings" in capsys.readouterr().err
    assert main([*train, "--fold", "21"]) == 2
    assert main([*train[:7], "--fold", "3", "--out", str(tmp_path / "m")]) == 2  # --fold without loso
    assert "--fold needs --protocol loso" in capsys.readouterr().err

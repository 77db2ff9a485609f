"""File data sets: folder-per-class, UCF101 (official layout and splits), UT-Interaction, the
data root, make_dataset, and the synthetic export read back through VideoFolder."""

from __future__ import annotations

import shutil

import pytest
import torch

from vidshield.data import (
    UCF101,
    UT_INTERACTION_CLASSES,
    UTInteraction,
    VideoFolder,
    default_data_root,
    export_synthetic,
    make_dataset,
)
from vidshield.errors import DataRootError

from .conftest import UCF_CLASSES, tiny_video, write_tiny

# ---------------------------------------------------------------- VideoFolder


def test_video_folder_reads_exact_frames(tmp_path):
    write_tiny(tmp_path / "b" / "x.mkv", 1, frames=6)
    write_tiny(tmp_path / "a" / "y.avi", 2, frames=6)
    (tmp_path / "a" / "notes.txt").write_text("not a video")
    (tmp_path / "empty").mkdir()
    ds = VideoFolder(tmp_path, frames=6)
    assert ds.classes == ["a", "b"]  # sorted; folders without videos are no class
    assert [label for _, label in ds.samples] == [0, 1]
    video, label = ds[1]
    assert label == 1 and torch.equal(video, tiny_video(1, frames=6))
    # T < available: uniform frames 0, 2 (round(linspace(0, 5, 3)) = 0, 2, 5), 5
    three = VideoFolder(tmp_path, frames=3)[1][0]
    assert torch.equal(three, tiny_video(1, frames=6)[[0, 2, 5]])


def test_video_folder_size_and_given_classes(tmp_path):
    write_tiny(tmp_path / "cat" / "1.mkv", 1, frames=4, height=24, width=32)
    write_tiny(tmp_path / "dog" / "1.mkv", 2, frames=4, height=24, width=32)
    ds = VideoFolder(tmp_path, frames=4, size=(16, 16), classes=["dog", "cat"])
    assert ds.classes == ["dog", "cat"]
    video, label = ds[0]
    assert label == 0 and video.shape == (4, 3, 16, 16)
    assert ds.samples[0][0].endswith("dog/1.mkv")


def test_video_folder_errors(tmp_path):
    with pytest.raises(DataRootError, match=r"does not exist.*root/<class>/<clip>"):
        VideoFolder(tmp_path / "nowhere", frames=4)
    (tmp_path / "a").mkdir()
    with pytest.raises(DataRootError, match="no videos found"):
        VideoFolder(tmp_path, frames=4)
    with pytest.raises(DataRootError, match=r"class folders missing.*'zebra'"):
        VideoFolder(tmp_path, frames=4, classes=["a", "zebra"])
    write_tiny(tmp_path / "a" / "v.mkv", 0)
    with pytest.raises(ValueError, match="augment"):
        VideoFolder(tmp_path, frames=4, augment=True)


def test_export_reads_back_exactly(tmp_path):
    kw = dict(num_classes=3, frames=5, height=24, width=32)
    written = export_synthetic(tmp_path, num_videos=6, seed=2, splits=("train", "test"), **kw)
    assert sorted(written) == ["test", "train"] and all(len(p) == 6 for p in written.values())
    for split in ("train", "test"):
        folder = VideoFolder(tmp_path / split, frames=5)
        generated = make_dataset("synthetic", split=split, seed=2, num_videos=6, frames=5, size=(24, 32), num_classes=3)
        assert folder.classes == generated.classes  # label order from classes.txt, not sorted names
        assert len(folder) == 6
        for path, label in folder.samples:
            index = int(path.rsplit("_", 1)[1].split(".")[0])
            video, file_label = folder[folder.samples.index((path, label))]
            expected, expected_label = generated[index]
            assert file_label == expected_label
            assert torch.equal(video, (expected * 255).round() / 255)  # lossless up to uint8 rounding
    # train and test hold different clips
    train_clip = VideoFolder(tmp_path / "train", frames=5)[0][0]
    assert not torch.equal(train_clip, VideoFolder(tmp_path / "test", frames=5)[0][0])


def test_export_resumes_and_flat_tree(tmp_path):
    first = export_synthetic(tmp_path, num_videos=4, splits=None, num_classes=2, frames=2, height=16, width=16)
    paths = first[""]
    assert paths[0].parent.name == "disc-orbit" and paths[0].parent.parent == tmp_path
    stamp = paths[1].stat().st_mtime_ns
    paths[0].unlink()
    again = export_synthetic(tmp_path, num_videos=4, splits=None, num_classes=2, frames=2, height=16, width=16)
    assert again[""] == paths and paths[0].exists()
    assert paths[1].stat().st_mtime_ns == stamp  # kept, not rewritten
    with pytest.raises(DataRootError, match=r"other parameters \(frames\)"):
        export_synthetic(tmp_path, num_videos=4, splits=None, num_classes=2, frames=3, height=16, width=16)


# ---------------------------------------------------------------- UCF101


@pytest.mark.parametrize("fold", [1, 2, 3])
def test_ucf101_folds(ucf_tree, fold):
    train = UCF101(ucf_tree, fold=fold, split="train", frames=4, size=None)
    test = UCF101(ucf_tree / "UCF-101", fold=fold, split="test", frames=4, size=None)
    assert train.classes == list(UCF_CLASSES) and test.classes == list(UCF_CLASSES)
    assert len(train) == 12 and len(test) == 6
    assert all(f"_g{fold:02d}_" in p for p, _ in test.samples)
    assert not any(f"_g{fold:02d}_" in p for p, _ in train.samples)
    for path, label in train.samples + test.samples:
        assert f"v_{UCF_CLASSES[label]}_g" in path
    assert sorted(test.labels) == [0, 0, 1, 1, 2, 2]


def test_ucf101_item_and_splits_dir(ucf_tree):
    moved = ucf_tree / "lists"
    shutil.move(ucf_tree / "ucfTrainTestlist", moved)
    with pytest.raises(DataRootError, match="split folder not found"):
        UCF101(ucf_tree, frames=4)
    ds = UCF101(ucf_tree, split="test", splits_dir=moved, frames=4, size=(16, 16))
    video, label = ds[0]
    assert video.shape == (4, 3, 16, 16) and label == 0


def test_ucf101_case_mismatch_in_list_is_resolved(ucf_tree):
    lists = ucf_tree / "ucfTrainTestlist"
    text = (lists / "testlist01.txt").read_text().replace("v_YoYo_", "v_Yoyo_")
    (lists / "testlist01.txt").write_text(text)
    ds = UCF101(ucf_tree, split="test", frames=4)
    assert sum(p.endswith("v_YoYo_g01_c01.avi") for p, _ in ds.samples) == 1


def test_ucf101_errors(ucf_tree):
    lists = ucf_tree / "ucfTrainTestlist"
    with pytest.raises(DataRootError, match="does not exist"):
        UCF101(ucf_tree / "missing", frames=4)
    (lists / "testlist02.txt").unlink()
    with pytest.raises(DataRootError, match="testlist02.txt.*missing"):
        UCF101(ucf_tree, fold=2, split="test", frames=4)
    (ucf_tree / "UCF-101" / "YoYo" / "v_YoYo_g01_c02.avi").unlink()
    with pytest.raises(DataRootError, match=r"1 videos listed .* missing.*v_YoYo_g01_c02"):
        UCF101(ucf_tree, fold=1, split="test", frames=4)
    train = (lists / "trainlist03.txt").read_text().replace("v_Basketball_g01_c01.avi 2", "v_Basketball_g01_c01.avi 3")
    (lists / "trainlist03.txt").write_text(train)
    with pytest.raises(DataRootError, match=r"trainlist03.txt:\d+: label 3 disagrees"):
        UCF101(ucf_tree, fold=3, split="train", frames=4)
    with pytest.raises(ValueError, match="fold"):
        UCF101(ucf_tree, fold=4, frames=4)


# ---------------------------------------------------------------- UT-Interaction


def test_ut_interaction_mini_tree(ut_tree):
    train = UTInteraction(ut_tree, split="train", frames=4, size=(16, 16))
    test = UTInteraction(ut_tree, split="test", frames=4, size=(16, 16))
    assert train.classes == list(UT_INTERACTION_CLASSES)
    assert len(train) == len(test) == 12
    assert train.labels == [k for k in range(6) for _ in range(2)]
    assert set(train.sequences) == {1, 2} and set(test.sequences) == {11, 12}
    assert all("/set2/" in p for p, _ in test.samples)
    video, label = test[3]
    assert video.shape == (4, 3, 16, 16) and label == 1


def test_ut_interaction_errors(ut_tree):
    with pytest.raises(DataRootError, match="set1"):
        UTInteraction(ut_tree.parent / "nothing", frames=4)
    bad = ut_tree / "set1" / "kick" / "99_1_4.avi"  # label 4 (punch) in the kick folder
    write_tiny(bad, 0)
    with pytest.raises(DataRootError, match=r"label 4 in its name but lies in 'kick'"):
        UTInteraction(ut_tree, frames=4)
    bad.rename(ut_tree / "set1" / "kick" / "kick-extra.avi")
    with pytest.raises(DataRootError, match="not named"):
        UTInteraction(ut_tree, frames=4)
    shutil.rmtree(ut_tree / "set2" / "push")
    with pytest.raises(DataRootError, match="push.*missing"):
        UTInteraction(ut_tree, split="test", frames=4)


# ---------------------------------------------------------------- roots and make_dataset


def test_default_data_root_from_env(tmp_path, monkeypatch):
    (tmp_path / "ut-interaction").mkdir()
    monkeypatch.setenv("VIDSHIELD_DATA", str(tmp_path))
    assert default_data_root("ut-interaction") == tmp_path / "ut-interaction"
    with pytest.raises(DataRootError, match=r"VIDSHIELD_DATA=.*no UCF-101/ folder"):
        default_data_root("ucf101")
    with pytest.raises(ValueError, match="no default root"):
        default_data_root("imagenet")


def test_make_dataset_file_sets(ut_tree, ucf_tree, tmp_path, monkeypatch):
    monkeypatch.setenv("VIDSHIELD_DATA", str(ut_tree.parent))
    ut = make_dataset("ut-interaction", split="test", frames=4, size=(16, 16))
    assert isinstance(ut, UTInteraction) and ut.split == "test" and ut.sampling == "uniform"
    aug = make_dataset("ut-interaction", frames=4, size=(16, 16), augment=True)
    assert aug.sampling == "random" and aug.augment
    video, _ = aug[0]
    assert video.shape == (4, 3, 16, 16) and video.min() >= 0 and video.max() <= 1
    ucf = make_dataset("ucf101", root=ucf_tree, split="train", fold=2, frames=4, size=(16, 16))
    assert isinstance(ucf, UCF101) and ucf.fold == 2 and len(ucf) == 12
    export_synthetic(tmp_path / "exp", num_videos=3, num_classes=3, frames=2, height=16, width=16)
    folder = make_dataset("folder", root=tmp_path / "exp", split="test", frames=2, size=(16, 16))
    assert isinstance(folder, VideoFolder) and folder.root == tmp_path / "exp" / "test"
    with pytest.raises(DataRootError, match="needs a root"):
        make_dataset("folder", frames=2)
    with pytest.raises(ValueError, match="unknown data set"):
        make_dataset("kinetics")


def test_make_dataset_synthetic():
    train = make_dataset("synthetic", split="train", num_videos=4, frames=3, size=(24, 24), seed=5)
    test = make_dataset("synthetic", split="test", num_videos=4, frames=3, size=(24, 24), seed=5)
    assert len(train) == 4 and train[0][0].shape == (3, 3, 24, 24)
    assert not torch.equal(train[0][0], test[0][0])
    aug = make_dataset("synthetic", num_videos=2, frames=3, size=(24, 24), augment=True)
    assert aug[0][0].shape == (3, 3, 24, 24)
    assert len(make_dataset("synthetic", split="test", frames=2, size=(16, 16))) == 200
    with pytest.raises(ValueError, match="takes no root"):
        make_dataset("synthetic", root="somewhere")
    with pytest.raises(TypeError):
        make_dataset("synthetic", fold=2)

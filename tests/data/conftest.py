"""Fixtures for the data tests: tiny lossless videos in the official UCF101 and UT-Interaction
layouts, written by the tests themselves."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from vidshield.io import write_video

UCF_CLASSES = ("ApplyEyeMakeup", "Basketball", "YoYo")


def tiny_video(seed: int, *, frames: int = 4, height: int = 24, width: int = 32) -> torch.Tensor:
    """float32 ``(frames, 3, height, width)`` with values on the uint8 grid (exact round trips)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (frames, 3, height, width), generator=g).float() / 255


def write_tiny(path: Path, seed: int, **kwargs) -> Path:
    return write_video(path, tiny_video(seed, **kwargs))


@pytest.fixture
def ucf_tree(tmp_path) -> Path:
    """A miniature UCF101 with the official naming: 3 classes, groups g01-g03, 2 clips per group
    (4-frame AVIs), classInd and three folds where fold f tests on group f.

    Returns the folder holding ``UCF-101/`` and ``ucfTrainTestlist/``.
    """
    videos = tmp_path / "UCF-101"
    lists = tmp_path / "ucfTrainTestlist"
    lists.mkdir(parents=True)
    (lists / "classInd.txt").write_bytes("".join(f"{i} {c}\r\n" for i, c in enumerate(UCF_CLASSES, 1)).encode())
    seed = 0
    clips = []
    for label, name in enumerate(UCF_CLASSES):
        for group in (1, 2, 3):
            for clip in (1, 2):
                rel = f"{name}/v_{name}_g{group:02d}_c{clip:02d}.avi"
                write_tiny(videos / rel, seed)
                seed += 1
                clips.append((rel, label, group))
    for fold in (1, 2, 3):
        train = "".join(f"{rel} {label + 1}\r\n" for rel, label, group in clips if group != fold)
        test = "".join(f"{rel}\r\n" for rel, label, group in clips if group == fold)
        (lists / f"trainlist0{fold}.txt").write_bytes(train.encode())
        (lists / f"testlist0{fold}.txt").write_bytes(test.encode())
    return tmp_path


@pytest.fixture
def ut_tree(tmp_path) -> Path:
    """A miniature UT-Interaction: set1 (sequences 1-2) and set2 (sequences 11-12), all 6 classes,
    files named ``<clip>_<sequence>_<label>.avi``."""
    from vidshield.data import UT_INTERACTION_CLASSES

    root = tmp_path / "ut-interaction"
    clip = 1
    for set_name, sequences in (("set1", (1, 2)), ("set2", (11, 12))):
        for label, name in enumerate(UT_INTERACTION_CLASSES):
            for seq in sequences:
                write_tiny(root / set_name / name / f"{clip}_{seq}_{label}.avi", clip)
                clip += 1
    return root

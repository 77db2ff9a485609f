"""The real UT-Interaction clips (../shared/data/ut-interaction or $VIDSHIELD_DATA); skipped when absent."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import torch

from vidshield.data import UT_INTERACTION_CLASSES, UTInteraction, default_data_root, make_dataset


@pytest.fixture
def ut_root(data_root):
    root = data_root / "ut-interaction"
    if not root.is_dir():
        pytest.skip(f"UT-Interaction not found at {root}")
    return root


def test_ut_interaction_listing(ut_root):
    train = UTInteraction(ut_root, split="train", frames=16)
    test = UTInteraction(ut_root, split="test", frames=16)
    assert len(train) == 60 and len(test) == 60
    assert train.classes == list(UT_INTERACTION_CLASSES) and len(train.classes) == 6
    assert Counter(train.labels) == Counter(test.labels) == {k: 10 for k in range(6)}
    assert set(train.sequences) == set(range(1, 11)) and set(test.sequences) == set(range(11, 21))


def test_ut_interaction_clips_decode(ut_root, tmp_path):
    test = make_dataset("ut-interaction", root=ut_root, split="test", frames=16, size=(112, 112))
    video, label = test[0]
    assert video.shape == (16, 3, 112, 112) and video.dtype == torch.float32 and label == 0
    assert video.min() >= 0 and video.max() <= 1 and video.std() > 0.02  # real content, not blank
    train = make_dataset("ut-interaction", root=ut_root, frames=16, size=(112, 112), augment=True, cache=tmp_path)
    clip, label = train[59]
    assert clip.shape == (16, 3, 112, 112) and label == 5
    assert 16 <= train.load_frames(59).shape[0] <= 64


@pytest.mark.slow
def test_every_ut_interaction_clip_decodes(ut_root):
    for split in ("train", "test"):
        ds = UTInteraction(ut_root, split=split, frames=8, size=(56, 56))
        for i in range(len(ds)):
            video, label = ds[i]
            assert video.shape == (8, 3, 56, 56) and label == ds.samples[i][1]


def test_default_root_falls_back_to_shared_data(ut_root, monkeypatch):
    monkeypatch.delenv("VIDSHIELD_DATA", raising=False)
    expected = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "ut-interaction"
    if not expected.is_dir():
        pytest.skip(f"no checkout-side shared data at {expected}")
    assert default_data_root("ut-interaction") == expected

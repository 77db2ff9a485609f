"""The frame cache and the seeded DataLoader."""

from __future__ import annotations

import os

import pytest
import torch

from vidshield.data import FrameCache, SyntheticActions, VideoFolder, make_loader
from vidshield.video import frames_to_tensor

from .conftest import write_tiny


def _entries(root):
    return sorted(root.rglob("*.safetensors"))


@pytest.fixture
def folder(tmp_path):
    for i, name in enumerate(("a", "b")):
        write_tiny(tmp_path / "videos" / name / f"{i}.mkv", i, frames=8, height=24, width=32)
    return tmp_path / "videos"


def test_cache_hit_returns_identical_data_without_decoding(folder, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    plain = VideoFolder(folder, frames=4, size=(16, 16))
    cached = VideoFolder(folder, frames=4, size=(16, 16), cache=cache)
    first = cached[1][0]
    assert len(_entries(cache)) == 1
    assert torch.equal(first, plain[1][0])

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded although the clip is cached")

    monkeypatch.setattr(type(cached), "_decode", no_decoding)
    assert torch.equal(cached[1][0], first)


def test_cache_key_follows_file_and_spec(folder, tmp_path):
    cache = tmp_path / "cache"
    VideoFolder(folder, frames=4, size=(16, 16), cache=cache)[0]
    VideoFolder(folder, frames=5, size=(16, 16), cache=cache)[0]  # another T: another entry
    VideoFolder(folder, frames=4, size=(12, 12), cache=cache)[0]  # another size: another entry
    assert len(_entries(cache)) == 3
    video = VideoFolder(folder, frames=4, cache=cache).samples[0][0]
    write_tiny(video, 42, frames=8, height=24, width=32)  # the video changes on disk
    os.utime(video, ns=(1, 1))  # and its mtime surely differs
    fresh = VideoFolder(folder, frames=4, size=(16, 16), cache=cache)[0][0]
    assert torch.equal(fresh, VideoFolder(folder, frames=4, size=(16, 16))[0][0])
    assert len(_entries(cache)) == 4


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_corrupt_cache_entry_is_rebuilt(folder, tmp_path, damage):
    cache = tmp_path / "cache"
    ds = VideoFolder(folder, frames=4, size=(16, 16), cache=cache)
    expected = ds[0][0]
    (entry,) = _entries(cache)
    data = entry.read_bytes()
    entry.write_bytes({"truncate": data[: len(data) // 2], "garbage": os.urandom(len(data)), "empty": b""}[damage])
    assert torch.equal(ds[0][0], expected)
    rebuilt = FrameCache(cache).load(entry.stem)  # the entry was rewritten and reads back
    assert rebuilt is not None and torch.equal(frames_to_tensor(rebuilt), expected)


def test_cache_rejects_entry_of_another_key(tmp_path):
    cache = FrameCache(tmp_path)
    frames = torch.zeros(2, 4, 4, 3, dtype=torch.uint8)
    cache.store("a" * 64, frames)
    (tmp_path / "bb").mkdir()
    os.replace(cache.entry_path("a" * 64), cache.entry_path("b" * 64))
    assert cache.load("b" * 64) is None
    with pytest.raises(ValueError, match="uint8"):
        cache.store("c" * 64, frames.float())


def test_random_sampling_uses_cached_sequence(folder, tmp_path):
    cache = tmp_path / "cache"
    ds = VideoFolder(folder, frames=4, size=(16, 16), sampling="random", cache=cache)
    torch.manual_seed(0)
    clips = [ds[0][0] for _ in range(6)]
    assert all(c.shape == (4, 3, 16, 16) for c in clips)
    assert ds.load_frames(0).shape == (8, 16, 16, 3)  # all 8 frames (under the 64-frame cap)
    assert len({c.sum().item() for c in clips}) > 1  # different frames drawn
    assert len(_entries(cache)) == 1


def test_loader_batches_and_is_reproducible():
    ds = SyntheticActions(10, frames=2, height=16, width=16)
    batches = list(make_loader(ds, batch_size=4, shuffle=True, seed=3))
    videos, labels = batches[0]
    assert videos.shape == (4, 2, 3, 16, 16) and labels.dtype == torch.int64
    assert [len(b[1]) for b in batches] == [4, 4, 2]
    again = list(make_loader(ds, batch_size=4, shuffle=True, seed=3))
    assert all(torch.equal(a[1], b[1]) and torch.equal(a[0], b[0]) for a, b in zip(batches, again))
    other = [b[1] for b in make_loader(ds, batch_size=4, shuffle=True, seed=4)]
    assert not all(torch.equal(a[1], b) for a, b in zip(batches, other))
    with pytest.raises(ValueError, match="batch_size"):
        make_loader(ds, batch_size=0, shuffle=False)


def test_loader_workers_reproduce_random_sampling(folder):
    ds = VideoFolder(folder, frames=3, size=(16, 16), sampling="random", augment=True)

    def run():
        return [b[0] for b in make_loader(ds, batch_size=2, shuffle=True, num_workers=1, seed=7)]

    first, second = run(), run()
    assert all(torch.equal(a, b) for a, b in zip(first, second))

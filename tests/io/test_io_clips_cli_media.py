"""The clip container, the ``info`` command, and reading the real media (skipped when absent)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vidshield.cli import main
from vidshield.errors import VideoDecodeError
from vidshield.io import iter_chunks, load_clips, probe, read_frames, read_video, save_clips
from vidshield.video import to_uint8


def test_clip_container_round_trip_uint8_exact(tmp_path, moving_video):
    videos = torch.stack([moving_video, moving_video.flip(0)])
    labels = torch.tensor([3, 1])
    meta = {"classes": ["a", "b", "c", "d"], "attack": {"eps": 10 / 255}}
    path = save_clips(tmp_path / "clips.safetensors", videos, labels, meta)
    back, back_labels, back_meta = load_clips(path)
    assert back.dtype == torch.float32 and torch.equal(back, videos)
    assert back_labels.dtype == torch.int64 and torch.equal(back_labels, labels)
    assert back_meta == meta
    # levels of 1/255 are stored as uint8: about a quarter of the float32 size
    assert path.stat().st_size < videos.numel() * 2
    assert torch.equal(load_clips(save_clips(tmp_path / "u8.safetensors", to_uint8(videos), labels))[0], videos)


def test_clip_container_keeps_arbitrary_floats(tmp_path, moving_video):
    videos = (moving_video + 0.3 / 255).clamp(0, 1)[None]
    back, _, meta = load_clips(save_clips(tmp_path / "f.safetensors", videos, torch.tensor([0])))
    assert torch.equal(back, videos) and meta == {}


def test_clip_container_errors(tmp_path, moving_video):
    with pytest.raises(ValueError):
        save_clips(tmp_path / "x.safetensors", moving_video, torch.tensor([0]))  # not a batch
    with pytest.raises(ValueError):
        save_clips(tmp_path / "x.safetensors", moving_video[None], torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="JSON"):
        save_clips(tmp_path / "x.safetensors", moving_video[None], torch.tensor([0]), {"bad": object()})
    bogus = tmp_path / "bogus.safetensors"
    bogus.write_text("not safetensors")
    for path in (bogus, tmp_path / "missing.safetensors"):
        with pytest.raises(VideoDecodeError) as err:
            load_clips(path)
        assert str(path) in str(err.value)


def test_info_json_and_table(lossless_video_file, capsys):
    assert main(["info", str(lossless_video_file), "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert (row["width"], row["height"], row["num_frames"], row["codec"]) == (48, 32, 8, "ffv1")
    assert main(["info", str(lossless_video_file)]) == 0
    out = capsys.readouterr().out
    assert "48x32" in out and "ffv1" in out


def test_info_bad_file_is_a_one_line_error(tmp_path, capsys):
    path = tmp_path / "notes.mp4"
    path.write_text("hello")
    assert main(["info", str(path)]) == 2
    err = capsys.readouterr().err
    assert "notes.mp4" in err and "Traceback" not in err


def test_bikes_mp4(media_dir):
    path = media_dir / "bikes.mp4"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    info = probe(path)
    assert (info.width, info.height, info.num_frames, info.codec) == (640, 272, 250, "h264")
    assert info.fps == pytest.approx(25.0) and info.duration == pytest.approx(10.0)
    clip = read_video(path, num_frames=16, short_side=112, crop=(112, 112))
    assert clip.shape == (16, 3, 112, 112) and clip.dtype == torch.float32
    assert 0.05 < float(clip.mean()) < 0.95 and float(clip.std()) > 0.05  # real content, not blank
    window = read_frames(path, start=240, length=10)
    assert window.shape == (10, 272, 640, 3)
    last = read_frames(path, start=249, length=1)
    np.testing.assert_array_equal(last[0], window[-1])
    with pytest.raises(VideoDecodeError, match="needs frame 250"):
        read_frames(path, start=245, length=6)


def test_ut_interaction_clip(data_root):
    clips = sorted((data_root / "ut-interaction" / "set1").glob("*/*.avi"))
    if not clips:
        pytest.skip("UT-Interaction set1 not present")
    path = clips[0]
    info = probe(path)
    assert info.codec == "mpeg4" and info.fps == pytest.approx(30.0)
    frames = read_frames(path)
    assert frames.shape == (info.num_frames, info.height, info.width, 3)
    starts = []
    total = 0
    for start, chunk in iter_chunks(path, chunk_frames=32, overlap=8, short_side=64):
        starts.append(start)
        total = start + len(chunk)
    assert starts[:3] == [0, 24, 48] and total == info.num_frames
    assert read_frames(path, num_frames=16, size=(112, 112)).shape == (16, 112, 112, 3)

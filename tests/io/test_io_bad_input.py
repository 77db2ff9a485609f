"""Every kind of bad input gets a VideoDecodeError naming the file (or a warning for skipped
frames), never a crash, a hang or a silent empty result. The files are made here."""

from __future__ import annotations

import re
import warnings
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from vidshield.errors import VideoDecodeError
from vidshield.io import CorruptVideoWarning, iter_chunks, probe, read_frames, write_video
from vidshield.video import tensor_to_frames


def _readers(path: Path):
    """Every public way of reading a file, each run to completion."""
    return {
        "probe": lambda: probe(path),
        "read_all": lambda: read_frames(path),
        "sample": lambda: read_frames(path, num_frames=4),
        "chunks": lambda: list(iter_chunks(path, chunk_frames=3)),
    }


def _assert_all_fail(path: Path, reason: str):
    for name, read in _readers(path).items():
        with pytest.raises(VideoDecodeError, match=reason) as err:
            read()
        assert str(path) in str(err.value), name
        assert err.value.path == str(path)


def _write_raw(
    path: Path, frames: np.ndarray, *, codec="ffv1", pix_fmt="bgr0", pts=None, time_base=None, in_format="rgb24"
):
    """Encode frames with PyAV directly (bypassing write_video's checks)."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=25)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = pix_fmt
        if time_base is not None:
            stream.time_base = time_base
            stream.codec_context.time_base = time_base
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format=in_format)
            frame.pts = i if pts is None else pts[i]
            if time_base is not None:
                frame.time_base = time_base
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def test_missing_file(tmp_path):
    _assert_all_fail(tmp_path / "nope.mp4", "no such file")


def test_directory(tmp_path):
    (tmp_path / "dir.mkv").mkdir()
    _assert_all_fail(tmp_path / "dir.mkv", "directory")


def test_empty_file(tmp_path):
    (tmp_path / "empty.mp4").write_bytes(b"")
    _assert_all_fail(tmp_path / "empty.mp4", "empty")


def test_text_file_named_mp4(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("this is not a video\n" * 50)
    _assert_all_fail(path, "not a video")


def test_random_bytes(tmp_path):
    path = tmp_path / "noise.mkv"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    _assert_all_fail(path, "not a video")


def test_audio_only_file(tmp_path):
    path = tmp_path / "tone.wav"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("pcm_s16le", rate=8000, layout="mono")
        samples = (np.sin(np.arange(8000) / 10) * 1000).astype(np.int16)[None]
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = 8000
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    _assert_all_fail(path, "no video stream")


def test_zero_video_frames(tmp_path):
    path = tmp_path / "hollow.mkv"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("ffv1", rate=25)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "bgr0"
        out.start_encoding()  # header only, no packets
    _assert_all_fail(path, "no decodable frames|no video data")


def test_absurd_frame_size_in_file(tmp_path):
    path = _write_raw(tmp_path / "wide.mkv", np.zeros((1, 2, 16400, 3), np.uint8))
    _assert_all_fail(path, "outside 1..16384")


def _strict_readers(path: Path):
    return {
        "probe": lambda: probe(path, strict=True),
        "read_all": lambda: read_frames(path, strict=True),
        "sample": lambda: read_frames(path, num_frames=4, strict=True),
        "chunks": lambda: list(iter_chunks(path, chunk_frames=3, strict=True)),
    }


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9])
@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])
def test_truncated_file(tmp_path, moving_video, fraction, suffix):
    """What decodes of a truncated file is read, with a warning that says truncated (a player
    shows those frames); strict reading refuses it and names the option."""
    whole = write_video(tmp_path / f"whole{suffix}", moving_video)
    path = tmp_path / f"cut{suffix}"
    path.write_bytes(whole.read_bytes()[: int(whole.stat().st_size * fraction)])
    try:
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always", CorruptVideoWarning)
            frames = read_frames(path)
    except VideoDecodeError as e:  # nothing decodable is left: refused whatever the mode
        reason = "not a video|no decodable frames|no video data|no video stream"
        assert re.search(reason, str(e)), e
        for name, read in _readers(path).items():
            if name == "probe":  # probe demuxes without decoding: packets may be there
                try:
                    assert read().truncated
                except VideoDecodeError as err:
                    assert re.search(reason, str(err))
                continue
            with pytest.raises(VideoDecodeError, match=reason):
                read()
        return
    warning = next(w.message for w in record if getattr(w.message, "truncated", False))
    assert "truncated" in str(warning) or "damaged" in str(warning)
    assert 0 < len(frames) < moving_video.shape[0] and warning.frames_decoded == len(frames)
    np.testing.assert_array_equal(frames, tensor_to_frames(moving_video)[: len(frames)])
    info = probe(path)
    assert info.truncated and info.frames_declared == moving_video.shape[0] and not probe(whole).truncated
    for name, read in _strict_readers(path).items():
        with pytest.raises(VideoDecodeError, match="--strict") as err:
            read()
        assert "truncated" in str(err.value) or "damaged" in str(err.value), name


def test_window_before_the_truncation_still_reads(tmp_path, moving_video):
    whole = write_video(tmp_path / "whole.mkv", moving_video).read_bytes()
    path = tmp_path / "cut.mkv"
    path.write_bytes(whole[: int(len(whole) * 0.7)])
    np.testing.assert_array_equal(read_frames(path, length=2), tensor_to_frames(moving_video)[:2])


def test_corrupt_packet_mid_stream_is_skipped_with_a_warning(tmp_path, moving_video):
    frames = tensor_to_frames(moving_video)
    good = write_video(tmp_path / "good.mkv", frames)
    data = bytearray(good.read_bytes())
    with av.open(str(good)) as c:
        payload = [bytes(p) for p in c.demux(video=0) if p.size][3]
    end = data.find(payload) + len(payload)
    data[end - 8 : end] = bytes(b ^ 0xFF for b in data[end - 8 : end])  # frame 3's FFV1 slice trailer
    bad = tmp_path / "bad.mkv"
    bad.write_bytes(bytes(data))
    with pytest.warns(CorruptVideoWarning, match=r"7 frames decoded from 8 packets") as record:
        out = read_frames(bad)
    assert str(bad) in str(record[0].message)
    np.testing.assert_array_equal(out, np.delete(frames, 3, axis=0))
    with pytest.warns(CorruptVideoWarning):
        np.testing.assert_array_equal(read_frames(bad, num_frames=3), out[[0, 3, 6]])
    # the window lies before the damage: exact, and no warning since decoding stops early
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(read_frames(bad, length=3), frames[:3])
    # frame 7 no longer exists: asked-for frames that cannot be produced raise
    with pytest.warns(CorruptVideoWarning), pytest.raises(VideoDecodeError, match="only 7 decodable frames") as err:
        read_frames(bad, start=7, length=1)
    assert str(bad) in str(err.value)


def test_grayscale_input_becomes_rgb(tmp_path):
    gray = np.random.default_rng(0).integers(0, 256, (3, 20, 30), dtype=np.uint8)
    path = _write_raw(tmp_path / "gray.mkv", gray, pix_fmt="gray", in_format="gray")
    assert probe(path).pix_fmt == "gray"
    out = read_frames(path)
    assert out.shape == (3, 20, 30, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], gray)


def test_variable_frame_rate(tmp_path, moving_video):
    frames = tensor_to_frames(moving_video)
    pts_ms = [0, 40, 60, 100, 180, 200, 260, 300]  # irregular gaps, 8 frames
    path = _write_raw(tmp_path / "vfr.mkv", frames, pts=pts_ms, time_base=Fraction(1, 1000))
    info = probe(path)
    assert info.num_frames == 8
    assert 0.3 <= info.duration <= 0.36
    assert info.fps == pytest.approx(8 / info.duration)
    np.testing.assert_array_equal(read_frames(path), frames)
    np.testing.assert_array_equal(read_frames(path, num_frames=4), frames[[0, 2, 5, 7]])


def test_window_beyond_the_end(lossless_video_file):
    with pytest.raises(VideoDecodeError, match="needs frame 9") as err:
        read_frames(lossless_video_file, start=6, length=4)
    assert str(lossless_video_file) in str(err.value)
    with pytest.raises(VideoDecodeError, match="beyond the last frame"):
        read_frames(lossless_video_file, start=8)

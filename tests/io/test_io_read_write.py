"""Reading, writing, probing and streaming on small synthetic videos."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vidshield.errors import VideoEncodeError
from vidshield.io import iter_chunks, probe, read_frames, read_video, uniform_indices, write_video
from vidshield.video import tensor_to_frames


def _noise_frames(t=6, h=33, w=47, seed=1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (t, h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("suffix", [".mkv", ".avi", ".nut", ".mp4"])
def test_lossless_round_trip_is_exact_for_odd_sizes(tmp_path, suffix):
    frames = _noise_frames()  # odd width and height, full-range noise: the hardest case
    path = write_video(tmp_path / f"clip{suffix}", frames, fps=30.0, lossless=True)
    np.testing.assert_array_equal(read_frames(path), frames)


def test_lossless_default_for_mkv_float_input(lossless_video_file, moving_video):
    out = read_video(lossless_video_file)
    assert out.dtype == torch.float32 and out.shape == moving_video.shape
    assert torch.equal(out, moving_video)  # the fixture's values are multiples of 1/255


def test_write_does_not_modify_input_and_leaves_no_temp_files(tmp_path, moving_video):
    before = moving_video.clone()
    write_video(tmp_path / "a.mkv", moving_video)
    assert torch.equal(moving_video, before)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mkv"]


def test_probe_figures(lossless_video_file):
    info = probe(lossless_video_file)
    assert (info.width, info.height, info.num_frames) == (48, 32, 8)
    assert info.fps == pytest.approx(25.0)
    assert info.duration == pytest.approx(8 / 25)
    assert (info.codec, info.has_audio) == ("ffv1", False)
    assert probe(lossless_video_file, exact=True) == info


def test_probe_mp4_uses_header_and_counts_frames(tmp_path):
    path = write_video(tmp_path / "v.mp4", _noise_frames(t=10, h=32, w=48), fps=29.97)
    info = probe(path)
    assert (info.num_frames, info.width, info.height, info.pix_fmt) == (10, 48, 32, "yuv420p")
    assert info.fps == pytest.approx(29.97, abs=1e-3)


def test_uniform_indices():
    assert uniform_indices(8, 4).tolist() == [0, 2, 5, 7]
    assert uniform_indices(100, 1).tolist() == [0]
    assert uniform_indices(3, 5).tolist() == [0, 0, 1, 2, 2]
    with pytest.raises(ValueError):
        uniform_indices(0, 3)


def test_uniform_sampling_returns_the_right_frames(lossless_video_file, moving_video):
    frames = tensor_to_frames(moving_video)
    np.testing.assert_array_equal(read_frames(lossless_video_file, num_frames=4), frames[[0, 2, 5, 7]])
    np.testing.assert_array_equal(read_frames(lossless_video_file, num_frames=12), frames[uniform_indices(8, 12)])


def test_window_read(lossless_video_file, moving_video):
    frames = tensor_to_frames(moving_video)
    np.testing.assert_array_equal(read_frames(lossless_video_file, start=1, stride=3, length=3), frames[[1, 4, 7]])
    np.testing.assert_array_equal(read_frames(lossless_video_file, start=5), frames[5:])
    np.testing.assert_array_equal(read_frames(lossless_video_file, start=2, stride=2), frames[2::2])


@pytest.mark.parametrize(
    ("options", "shape"),
    [
        ({"size": (16, 20)}, (8, 16, 20, 3)),
        ({"short_side": 16}, (8, 16, 24, 3)),
        ({"short_side": 64}, (8, 64, 96, 3)),
        ({"short_side": 16, "crop": (16, 16)}, (8, 16, 16, 3)),
        ({"crop": (10, 30)}, (8, 10, 30, 3)),
        ({"num_frames": 3, "size": (7, 9), "crop": (5, 5)}, (3, 5, 5, 3)),
    ],
)
def test_resize_and_crop_shapes(lossless_video_file, options, shape):
    assert read_frames(lossless_video_file, **options).shape == shape


def test_crop_is_centred_and_scaling_keeps_the_mean(lossless_video_file, moving_video):
    frames = tensor_to_frames(moving_video)
    np.testing.assert_array_equal(read_frames(lossless_video_file, crop=(10, 30)), frames[:, 11:21, 9:39])
    half = read_frames(lossless_video_file, size=(16, 24)).astype(np.float64)
    # area averaging by exactly 2: each output pixel is the mean of a 2x2 block
    blocks = frames.astype(np.float64).reshape(8, 16, 2, 24, 2, 3).mean(axis=(2, 4))
    assert np.abs(half - blocks).max() <= 1.0


def test_short_side_on_portrait_video(tmp_path):
    path = write_video(tmp_path / "portrait.mkv", _noise_frames(t=2, h=40, w=20))
    assert read_frames(path, short_side=10).shape == (2, 20, 10, 3)


@pytest.mark.parametrize(
    "options",
    [
        {"size": (0, 10)},
        {"size": (20000, 10)},
        {"size": (10.5, 10)},
        {"short_side": 0},
        {"short_side": 16385},
        {"size": (8, 8), "short_side": 8},
        {"crop": (64, 64)},
        {"num_frames": 0},
        {"num_frames": 2, "start": 1},
        {"stride": 0},
        {"start": -1},
        {"length": 0},
    ],
)
def test_invalid_arguments_raise_value_error(lossless_video_file, options):
    with pytest.raises(ValueError):
        read_frames(lossless_video_file, **options)


@pytest.mark.parametrize(("chunk", "overlap"), [(3, 0), (3, 1), (4, 2), (8, 0), (20, 5), (5, 4)])
def test_chunks_concatenate_to_the_full_read(lossless_video_file, chunk, overlap):
    full = read_video(lossless_video_file)
    chunks = list(iter_chunks(lossless_video_file, chunk_frames=chunk, overlap=overlap))
    expected_starts = list(range(0, max(len(full) - overlap, 1), chunk - overlap))
    assert [s for s, _ in chunks] == expected_starts
    for start, c in chunks:
        assert c.dtype == torch.float32 and 1 <= len(c) <= chunk
        assert torch.equal(c, full[start : start + len(c)])
    assert chunks[-1][0] + len(chunks[-1][1]) == len(full)
    rebuilt = torch.cat([chunks[0][1]] + [c[overlap:] for _, c in chunks[1:]])
    assert torch.equal(rebuilt, full)


def test_chunks_with_resize_match_read(lossless_video_file):
    full = read_video(lossless_video_file, short_side=16, crop=(16, 16))
    rebuilt = torch.cat([c for _, c in iter_chunks(lossless_video_file, chunk_frames=3, short_side=16, crop=(16, 16))])
    assert torch.equal(rebuilt, full)


def test_chunk_arguments_are_checked(lossless_video_file):
    with pytest.raises(ValueError, match="overlap"):
        next(iter_chunks(lossless_video_file, chunk_frames=4, overlap=4))
    with pytest.raises(ValueError):
        next(iter_chunks(lossless_video_file, chunk_frames=0))


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / mse)) if mse else float("inf")


def test_lossy_mp4_reads_back_close(tmp_path, moving_video):
    path = write_video(tmp_path / "view.mp4", moving_video, crf=18)
    assert probe(path).codec == "h264"
    back = read_frames(path)
    original = tensor_to_frames(moving_video)
    assert back.shape == original.shape
    assert not np.array_equal(back, original)  # it is lossy
    # 4:2:0 chroma subsampling of this tiny, colourful texture costs most of the error
    assert _psnr(back, original) > 25.0
    assert _psnr(read_frames(write_video(tmp_path / "worse.mp4", moving_video, crf=40)), original) < _psnr(
        back, original
    )


def test_lossless_mp4_uses_rgb_h264(tmp_path, moving_video):
    path = write_video(tmp_path / "exact.mp4", moving_video, lossless=True)
    assert probe(path).pix_fmt == "gbrp"
    np.testing.assert_array_equal(read_frames(path), tensor_to_frames(moving_video))


def test_write_errors(tmp_path, moving_video):
    with pytest.raises(VideoEncodeError, match="even width and height"):
        write_video(tmp_path / "odd.mp4", _noise_frames(h=33, w=47))
    with pytest.raises(VideoEncodeError, match="unsupported suffix"):
        write_video(tmp_path / "clip.gif", moving_video)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        write_video(tmp_path / "range.mkv", moving_video * 2)
    with pytest.raises(ValueError, match="uint8"):
        write_video(tmp_path / "layout.mkv", tensor_to_frames(moving_video).astype(np.int16))
    with pytest.raises(ValueError, match="fps"):
        write_video(tmp_path / "fps.mkv", moving_video, fps=0)
    assert list(tmp_path.iterdir()) == []


def test_write_refuses_frames_beyond_the_size_limit(tmp_path):
    frames = np.zeros((1, 2, 16386, 3), np.uint8)
    with pytest.raises(VideoEncodeError, match="16384"):
        write_video(tmp_path / "wide.mkv", frames)


# container, codec for a file of each ending the package looks for in folders
_CONTAINERS = {
    ".avi": ("avi", "mpeg4"),
    ".mkv": ("matroska", "ffv1"),
    ".mp4": ("mp4", "mpeg4"),
    ".m4v": ("ipod", "mpeg4"),
    ".mov": ("mov", "mpeg4"),
    ".webm": ("webm", "libvpx"),
    ".mpg": ("mpeg", "mpeg1video"),
    ".mpeg": ("mpeg", "mpeg2video"),
    ".ts": ("mpegts", "mpeg2video"),
    ".y4m": ("yuv4mpegpipe", "rawvideo"),
    ".nut": ("nut", "ffv1"),
}


def test_every_video_extension_is_read_and_found_in_folders(tmp_path):
    import av

    from vidshield.data import VideoFolder
    from vidshield.detection import collect_videos
    from vidshield.io import VIDEO_EXTENSIONS, is_video_file

    assert set(VIDEO_EXTENSIONS) == set(_CONTAINERS)
    folder = tmp_path / "cls"
    folder.mkdir()
    for k, ext in enumerate(VIDEO_EXTENSIONS):
        fmt, codec = _CONTAINERS[ext]
        name = f"clip{k:02d}{ext.upper() if k % 2 else ext}"  # endings match in any case
        with av.open(str(folder / name), "w", format=fmt) as out:
            stream = out.add_stream(codec, rate=25)
            stream.width = stream.height = 32
            stream.pix_fmt = "yuv420p"
            for i in range(8):
                frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 30 * i, np.uint8), format="rgb24")
                frame.pts = i
                out.mux(stream.encode(frame))
            out.mux(stream.encode())
        assert read_video(folder / name).shape == (8, 3, 32, 32), name
    (folder / ".hidden.mkv").write_bytes((folder / "clip01.MKV").read_bytes())
    (folder / "notes.txt").write_text("not a video")
    listed = sorted(p for p in folder.iterdir() if is_video_file(p))
    assert len(listed) == len(VIDEO_EXTENSIONS)
    assert [p for p, _ in collect_videos(folder)] == listed
    assert len(VideoFolder(tmp_path, frames=4, size=(32, 32))) == len(VIDEO_EXTENSIONS)

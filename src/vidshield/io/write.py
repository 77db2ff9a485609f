"""Write videos with PyAV, lossless for adversarial/defended clips, lossy H.264 for viewing.

| container | lossless (default for .mkv .avi .nut)        | lossy (default for .mp4 .mov) |
|-----------|----------------------------------------------|-------------------------------|
| .mkv .avi .nut | FFV1 (level 3, intra only, slice CRCs), ``bgr0`` | libx264 ``yuv420p``, ``crf`` |
| .mp4 .mov | libx264rgb ``rgb24``, crf 0 (lossless)       | libx264 ``yuv420p``, ``crf``  |

The lossless paths store RGB exactly, so a write then :func:`~vidshield.io.read_frames` returns
the same bytes (any width/height). ``yuv420p`` needs even sides; odd sides raise
:class:`~vidshield.errors.VideoEncodeError` rather than padding silently. Files are written to a
temporary name in the target folder and renamed when complete. Containers are written
bit-exact (no random segment id or time stamp): a lossless .mkv/.avi/.nut of the same frames is
the same file every time.
"""

from __future__ import annotations

import os
import tempfile
from fractions import Fraction
from pathlib import Path

try:
    import av
    import av.error
except ImportError:  # PyAV missing: see vidshield.io._source.require_pyav
    av = None
import numpy as np
import torch

from vidshield.errors import OutputError, VideoEncodeError
from vidshield.io._source import MAX_SIDE, require_pyav
from vidshield.text import printable
from vidshield.utils import check_writable, temp_prefix
from vidshield.video import check_video, tensor_to_frames

__all__ = ["write_video", "check_video_output", "as_uint8_frames"]

_FORMATS = {".mkv": "matroska", ".avi": "avi", ".nut": "nut", ".mp4": "mp4", ".mov": "mov"}
_LOSSLESS_BY_DEFAULT = {".mkv", ".avi", ".nut"}
_MP4_FAMILY = {".mp4", ".mov"}


def as_uint8_frames(video) -> np.ndarray:
    """A float video ``(T, 3, H, W)`` in [0, 1] (torch) or uint8 frames ``(T, H, W, 3)`` (torch or
    numpy) -> uint8 numpy ``(T, H, W, 3)`` RGB. Floats are rounded to the nearest level."""
    if isinstance(video, torch.Tensor) and video.is_floating_point():
        check_video(video)
        if video.dim() != 4:
            raise ValueError(f"write one video (T, 3, H, W), got shape {tuple(video.shape)}")
        return tensor_to_frames(video)
    frames = video.detach().cpu().numpy() if isinstance(video, torch.Tensor) else video
    if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        desc = f"dtype={getattr(frames, 'dtype', type(frames).__name__)}, shape={getattr(frames, 'shape', None)}"
        raise ValueError(f"video must be float (T, 3, H, W) in [0, 1] or uint8 (T, H, W, 3); got {desc}")
    if 0 in frames.shape:
        raise ValueError(f"video has an empty dimension: shape={frames.shape}")
    return np.ascontiguousarray(frames)


def _rate(fps) -> Fraction:
    try:
        value = float(fps)
    except (TypeError, ValueError):
        raise ValueError(f"fps must be a positive number, got {fps!r}") from None
    if not (np.isfinite(value) and 0 < value <= 1000):
        raise ValueError(f"fps must lie in (0, 1000], got {fps!r}")
    return Fraction(fps).limit_denominator(1001) if isinstance(fps, float) else Fraction(fps)


def check_video_output(path: str | os.PathLike, *, fps=None) -> Path:
    """Check, before the work that produces it, that :func:`write_video` can write ``path``: a
    supported suffix, a writable folder, a name that fits, and (if given) a frame rate it can store.

    Raises:
        VideoEncodeError: with the reason.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in _FORMATS:
        raise VideoEncodeError(
            f"cannot write {printable(path)}: unsupported suffix {printable(suffix) or '(none)'!r} "
            f"(use {', '.join(_FORMATS)})"
        )
    if fps is not None:
        try:
            _rate(fps)
        except ValueError as e:
            raise VideoEncodeError(f"cannot write {printable(path)}: {e}") from None
    try:
        check_writable(path)
    except OutputError as e:
        raise VideoEncodeError(str(e)) from None
    return path


def write_video(
    path: str | os.PathLike,
    video,
    *,
    fps: float = 25.0,
    lossless: bool | None = None,
    crf: int = 23,
    preset: str = "medium",
) -> Path:
    """Encode a video file (format from the suffix: .mkv .avi .nut .mp4 .mov), atomically.

    Args:
        path: output file; its folder is created.
        video: float ``(T, 3, H, W)`` in [0, 1] (rounded to uint8) or uint8 ``(T, H, W, 3)`` RGB.
        fps: frame rate (constant).
        lossless: None = lossless for .mkv/.avi/.nut, lossy for .mp4/.mov (see the module table).
        crf: H.264 quality for lossy writes (0..51, lower is better).
        preset: x264 speed preset (``ultrafast`` .. ``veryslow``).

    Returns:
        The path written.

    Raises:
        VideoEncodeError: unsupported suffix, odd sides for yuv420p, frames too large, encoder failure.
        ValueError: malformed ``video``, ``fps`` or ``crf``.
    """
    require_pyav()
    path = Path(path)
    suffix = path.suffix.lower()
    check_video_output(path)
    frames = as_uint8_frames(video)
    rate = _rate(fps)
    if not isinstance(crf, int) or isinstance(crf, bool) or not 0 <= crf <= 51:
        raise ValueError(f"crf must be an int in 0..51, got {crf!r}")
    _, height, width, _ = frames.shape
    if width > MAX_SIDE or height > MAX_SIDE:
        raise VideoEncodeError(f"cannot write {str(path)!r}: frame size {width}x{height} exceeds {MAX_SIDE} per side")
    if lossless is None:
        lossless = suffix in _LOSSLESS_BY_DEFAULT
    if not lossless:
        codec, pix_fmt, options = "libx264", "yuv420p", {"crf": str(crf), "preset": preset}
        if width % 2 or height % 2:
            raise VideoEncodeError(
                f"cannot write {str(path)!r}: lossy H.264 (yuv420p) needs even width and height, got "
                f"{width}x{height}; crop or pad the frames, or write losslessly"
            )
    elif suffix in _MP4_FAMILY:
        codec, pix_fmt, options = "libx264rgb", "rgb24", {"crf": "0", "qp": "0", "preset": preset}
    else:
        codec, pix_fmt, options = "ffv1", "bgr0", {"level": "3", "slicecrc": "1", "g": "1"}

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=temp_prefix(path), suffix=".tmp")
    except OSError as e:
        raise VideoEncodeError(f"cannot write {printable(path)}: {e.strerror or e}") from None
    os.close(fd)
    try:
        # bitexact: no random segment id or time stamp, so the same frames give the same file
        container_options = {"fflags": "+bitexact"}
        if suffix in _MP4_FAMILY:
            container_options["movflags"] = "+faststart"
        with av.open(tmp, mode="w", format=_FORMATS[suffix], options=container_options) as out:
            stream = out.add_stream(codec, rate=rate)
            stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
            stream.time_base = 1 / rate
            stream.options = options
            for i, rgb in enumerate(frames):
                frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
                frame.pts = i
                out.mux(stream.encode(frame))
            out.mux(stream.encode(None))
        os.replace(tmp, path)
    except (av.error.FFmpegError, OSError, ValueError) as e:
        Path(tmp).unlink(missing_ok=True)
        raise VideoEncodeError(f"cannot write {str(path)!r} with {codec}: {e}") from e
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path

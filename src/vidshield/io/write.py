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

import contextlib
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

__all__ = ["write_video", "VideoWriter", "check_video_output", "as_uint8_frames"]

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


def _check_crf(crf) -> int:
    if not isinstance(crf, int) or isinstance(crf, bool) or not 0 <= crf <= 51:
        raise ValueError(f"crf must be an int in 0..51, got {crf!r}")
    return crf


class VideoWriter:
    """Write a video frame by frame, atomically: the streaming form of :func:`write_video`, which
    uses it, so the same frames give the same file (byte for byte for the bit-exact containers).

    The encoder opens at the first frame (its size sets the stream's), frames are encoded as they
    are pushed (memory: the encoder's own look-ahead), and :meth:`close` flushes the encoder and
    renames the temporary file to ``path``. Leaving a ``with`` block by an exception, or
    :meth:`abort`, deletes the temporary file and leaves ``path`` untouched.

    Args:
        path, fps, lossless, crf, preset: as :func:`write_video`.

    Example:
        >>> with VideoWriter("out.mkv", fps=25) as w:
        ...     for frame in frames:          # uint8 (H, W, 3) RGB or float (3, H, W) in [0, 1]
        ...         w.write(frame)
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        fps: float = 25.0,
        lossless: bool | None = None,
        crf: int = 23,
        preset: str = "medium",
    ):
        require_pyav()
        self.path = check_video_output(path)
        self.suffix = self.path.suffix.lower()
        self.rate = _rate(fps)
        self.crf = _check_crf(crf)
        self.preset = preset
        self.lossless = self.suffix in _LOSSLESS_BY_DEFAULT if lossless is None else bool(lossless)
        self.frames_written = 0
        self.size: tuple[int, int] | None = None  # (height, width), set by the first frame
        self._tmp: Path | None = None
        self._closed = False
        self._container = None
        self._stream = None
        self.codec = None

    def _open(self, height: int, width: int) -> None:
        path = self.path
        if width > MAX_SIDE or height > MAX_SIDE:
            raise VideoEncodeError(
                f"cannot write {str(path)!r}: frame size {width}x{height} exceeds {MAX_SIDE} per side"
            )
        if not self.lossless:
            # one encoder thread: x264's frame threads made the same frames encode differently run to run
            codec, pix_fmt, options = (
                "libx264",
                "yuv420p",
                {"crf": str(self.crf), "preset": self.preset, "threads": "1"},
            )
            if width % 2 or height % 2:
                raise VideoEncodeError(
                    f"cannot write {str(path)!r}: lossy H.264 (yuv420p) needs even width and height, got "
                    f"{width}x{height}; crop or pad the frames, or write losslessly"
                )
        elif self.suffix in _MP4_FAMILY:
            codec, pix_fmt, options = (
                "libx264rgb",
                "rgb24",
                {"crf": "0", "qp": "0", "preset": self.preset, "threads": "1"},
            )
        else:
            codec, pix_fmt, options = "ffv1", "bgr0", {"level": "3", "slicecrc": "1", "g": "1"}
        self.codec = codec
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=temp_prefix(path), suffix=".tmp")
        except OSError as e:
            raise VideoEncodeError(f"cannot write {printable(path)}: {e.strerror or e}") from None
        os.close(fd)
        self._tmp = Path(tmp)
        # bitexact: no random segment id or time stamp, so the same frames give the same file
        container_options = {"fflags": "+bitexact"}
        if self.suffix in _MP4_FAMILY:
            container_options["movflags"] = "+faststart"
        with self._errors():
            self._container = av.open(tmp, mode="w", format=_FORMATS[self.suffix], options=container_options)
            stream = self._container.add_stream(codec, rate=self.rate)
            stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
            stream.time_base = 1 / self.rate
            stream.options = options
            self._stream = stream
        self.size = (height, width)

    @contextlib.contextmanager
    def _errors(self):
        """Encoder and file errors -> VideoEncodeError, with the temporary file removed."""
        try:
            yield
        except (av.error.FFmpegError, OSError, ValueError) as e:
            self.abort()
            raise VideoEncodeError(f"cannot write {str(self.path)!r} with {self.codec}: {e}") from e

    def write(self, frame) -> None:
        """Encode one frame: uint8 ``(H, W, 3)`` RGB (numpy or torch), or float ``(3, H, W)`` in
        [0, 1] (rounded to the nearest level). Every frame must have the first one's size."""
        rgb = as_uint8_frames(frame[None] if isinstance(frame, torch.Tensor | np.ndarray) else frame)[0]
        height, width = rgb.shape[:2]
        if self._closed:
            raise ValueError(f"{printable(self.path)}: the writer is closed")
        if self._container is None:
            self._open(height, width)
        elif (height, width) != self.size:
            raise ValueError(
                f"frame {self.frames_written} is {width}x{height}, the video {self.size[1]}x{self.size[0]}"
            )
        with self._errors():
            out = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            out.pts = self.frames_written
            self._container.mux(self._stream.encode(out))
        self.frames_written += 1

    def close(self) -> Path:
        """Flush the encoder and move the file into place. Returns the path written.

        Raises:
            ValueError: no frame was written."""
        if self._container is None:
            self.abort()
            raise ValueError(f"{printable(self.path)}: no frames were written")
        with self._errors():
            self._container.mux(self._stream.encode(None))
            self._container.close()
            self._container = None
            os.replace(self._tmp, self.path)
        self._closed = True
        return self.path

    def abort(self) -> None:
        """Stop without writing ``path`` (the temporary file is deleted)."""
        self._closed = True
        if self._container is not None:
            container, self._container = self._container, None
            with contextlib.suppress(Exception):
                container.close()
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            if not self._closed:
                self.close()
        else:
            self.abort()


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
    check_video_output(path)
    frames = as_uint8_frames(video)
    writer = VideoWriter(path, fps=fps, lossless=lossless, crf=crf, preset=preset)
    try:
        for rgb in frames:
            writer.write(rgb)
    except BaseException:
        writer.abort()
        raise
    return writer.close()

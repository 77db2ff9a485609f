"""Probe a video file: size, frame rate, frame count, duration, codec."""

from __future__ import annotations

import os
import warnings
from dataclasses import asdict, dataclass

from vidshield.io._source import CorruptVideoWarning, VideoSource

__all__ = ["VideoInfo", "probe"]


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe` finds out about a video file.

    Attributes:
        path: the file, as given.
        width, height: frame size in pixels.
        fps: average frame rate (frames/s): display slots over duration, so variable-frame-rate
            files report their mean rate and AVI dropped-frame placeholders count as slots.
        num_frames: number of frames (never a guess: counted when the header does not say).
        duration: seconds covered by the video frames.
        codec: the video codec's FFmpeg name (``h264``, ``ffv1``, ``mpeg4`` ...).
        pix_fmt: the decoder's pixel format (``yuv420p``, ``bgr0``, ``gray`` ...).
        has_audio: the file also holds an audio stream.
        truncated: the data ends before what the container declares, or demuxing broke off
            (``num_frames`` counts what is there); :func:`probe` with ``strict=True`` refuses it.
        frames_declared: frames the container declares (None when it does not say).
    """

    path: str
    width: int
    height: int
    fps: float
    num_frames: int
    duration: float
    codec: str
    pix_fmt: str
    has_audio: bool
    truncated: bool = False
    frames_declared: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def probe(path: str | os.PathLike, *, exact: bool = False, strict: bool = False) -> VideoInfo:
    """Read a video's figures.

    The file is demuxed once (no decoding; fast) to count the frames and measure the duration,
    since only some containers state a frame count and AVI's includes dropped-frame placeholders.
    The pass also detects truncated files.

    Args:
        path: the video file.
        exact: count frames by decoding them all (slow, but equals ``len(read_frames(path))`` even
            for damaged files).
        strict: refuse a truncated file (else ``truncated`` says so).

    Returns:
        A :class:`VideoInfo`.

    Raises:
        VideoDecodeError: missing or unreadable file, no video stream, no frames, a truncated
            file with ``strict``.
    """
    with VideoSource(path, strict=strict) as src, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CorruptVideoWarning)
        stream = src.stream
        codec = stream.codec_context.name
        pix_fmt = stream.codec_context.pix_fmt or "unknown"
        has_audio = bool(src.container.streams.audio)
        if exact:
            for _ in src.frames():
                pass
            num_frames, slots, duration = src.frames_out, src.frame_slots, _span(src)
        else:
            for _ in src.packets():
                pass
            src.check_complete(frames_decoded=None)
            num_frames, slots, duration = src.data_packets, src.frame_slots, _span(src)
        truncated = any(getattr(w.message, "truncated", False) for w in caught)
        for w in caught:  # the truncation is in the result; other damage is reported as found
            if not getattr(w.message, "truncated", False):
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        fps = slots / duration if duration > 0 else (src.declared_rate() or 0.0)
        return VideoInfo(
            path=str(path),
            width=src.width,
            height=src.height,
            fps=float(fps),
            num_frames=int(num_frames),
            duration=float(duration),
            codec=codec,
            pix_fmt=pix_fmt,
            has_audio=has_audio,
            truncated=truncated,
            frames_declared=src.declared_frames(),
        )


def _span(src: VideoSource) -> float:
    """Seconds covered by the packets seen in a full pass."""
    if src.data_end is None or src.data_start is None:
        return 0.0
    return max(src.data_end - src.data_start, 0.0)

"""One opened video stream: path checks, PyAV errors wrapped, frames decoded with damage accounting.

Every reader in :mod:`vidshield.io` goes through :class:`VideoSource`, so the policy for bad input
lives in one place:

- a missing path, a directory, a file FFmpeg cannot parse, a file without a video stream, or a
  frame size outside ``1..MAX_SIDE`` raises :class:`~vidshield.errors.VideoDecodeError` at open;
- packets the decoder rejects, and packets that silently produce no frame (beyond one or two,
  which real XviD files have), are skipped and reported once per full pass as a
  :class:`CorruptVideoWarning` with the counts; frame indices count the frames that did decode.
  Damage that the demuxer resynchronises over without any error can go unnoticed;
- a stream whose data ends before the duration or the frame count its container declares (a
  truncated file), or a demuxer error after some frames (a damaged container: the frames before
  it are kept), gives a :class:`CorruptVideoWarning` with ``truncated=True`` when the pass
  reaches the end: what decodes is what a player shows, and a screening tool answers on that.
  With ``strict=True`` (``--strict``) both raise :class:`~vidshield.errors.VideoDecodeError`;
- a stream with no decodable frame (or a demuxer error before any) raises VideoDecodeError;
- containers that declare neither (MPEG-TS, Y4M) but end inside a transport packet or a frame
  get a :class:`CorruptVideoWarning` saying the file looks truncated (``truncated=True``);
- frames whose size differs from the stream's first are scaled to it by the readers.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

try:
    import av
    import av.error
except ImportError:  # PyAV missing (e.g. a bare GPU machine): clip sets and tensors still work
    av = None

from vidshield.errors import VideoDecodeError, VidshieldError

#: Largest accepted frame side in pixels (files and requested sizes).
MAX_SIDE = 16384

# AVI files mark dropped frames with 1-byte placeholder packets that decode to nothing; they are
# not frames. Packets with a larger payload each hold one frame.
_PLACEHOLDER_BYTES = 1

# Containers that state no frame count or duration (FFmpeg estimates them from the data).
_UNDECLARED_FORMATS = {"mpegts", "yuv4mpegpipe", "mpeg", "mpegvideo", "h264", "hevc", "m4v", "mjpeg", "rawvideo"}

_DURATION_TAG = re.compile(r"^(\d+):(\d{2}):(\d{2}(?:\.\d+)?)$")


class CorruptVideoWarning(UserWarning):
    """Some frames of a video could not be decoded and were skipped, or the file looks truncated.

    ``frames_decoded``: frames the pass decoded; ``frames_declared``: frames the container
    declares (None when it does not say); ``truncated``: the data ends early (the frames that
    decode are all there is)."""

    def __init__(
        self,
        message: str,
        *,
        frames_decoded: int | None = None,
        frames_declared: int | None = None,
        truncated: bool = False,
    ):
        super().__init__(message)
        self.frames_decoded = frames_decoded
        self.frames_declared = frames_declared
        self.truncated = truncated


#: what a strict refusal adds to the reason
STRICT_HINT = "refused by strict decoding (--strict / strict=True); without it the frames that decode are used"


def require_pyav() -> None:
    """Raise a clear error when PyAV, which every video-file operation needs, is not installed."""
    if av is None:
        raise VidshieldError("PyAV is not installed: reading and writing video files needs it (pip install av)")


def check_video_path(path: str | os.PathLike) -> Path:
    """Return ``path`` as a Path if it names a readable regular file, else raise VideoDecodeError."""
    p = Path(path)
    if not p.exists():
        raise VideoDecodeError(p, "no such file")
    if p.is_dir():
        raise VideoDecodeError(p, "is a directory, not a video file")
    if not p.is_file():
        raise VideoDecodeError(p, "not a regular file")
    if p.stat().st_size == 0:
        raise VideoDecodeError(p, "file is empty")
    return p


def _parse_duration_tag(tag: str | None) -> float | None:
    """Matroska's per-track ``DURATION`` tag ``HH:MM:SS.fffffffff`` -> seconds."""
    m = _DURATION_TAG.match(tag.strip()) if tag else None
    return int(m[1]) * 3600 + int(m[2]) * 60 + float(m[3]) if m else None


class VideoSource:
    """The first video stream of a file, opened with PyAV (use as a context manager).

    Attributes after opening: ``path``, ``container``, ``stream``, ``width``, ``height``.
    ``frame_interval``: seconds per frame from the declared rate (0 if none).
    After a full pass of :meth:`frames`: ``frames_out``, ``data_packets`` (packets holding a frame),
    ``frame_slots`` (those plus dropped-frame placeholders: display slots), ``decoder_errors``,
    ``data_start``/``data_end`` (seconds spanned by the packets).
    ``strict``: a truncated or damaged-after-some-frames file raises instead of warning.
    """

    def __init__(self, path: str | os.PathLike, *, strict: bool = False):
        self.path = check_video_path(path)
        self.strict = bool(strict)
        require_pyav()
        try:
            self.container = av.open(str(self.path), mode="r")
        except av.error.EOFError as e:
            raise VideoDecodeError(self.path, "no video data: the file ends before any frame") from e
        except (av.error.FFmpegError, OSError, ValueError, IndexError) as e:
            raise VideoDecodeError(self.path, f"not a video FFmpeg can read ({_reason(e)})") from e
        try:
            if not self.container.streams.video:
                kinds = sorted({s.type for s in self.container.streams}) or ["no streams"]
                raise VideoDecodeError(self.path, f"no video stream (found: {', '.join(kinds)})")
            self.stream = self.container.streams.video[0]
            self.width = int(self.stream.codec_context.width or 0)
            self.height = int(self.stream.codec_context.height or 0)
            if not (0 < self.width <= MAX_SIDE and 0 < self.height <= MAX_SIDE):
                raise VideoDecodeError(
                    self.path, f"frame size {self.width}x{self.height} is outside 1..{MAX_SIDE} pixels per side"
                )
            self.stream.thread_type = "AUTO"
            rate = self.declared_rate()
            self.frame_interval = 1.0 / rate if rate else 0.0
        except BaseException:
            self.container.close()
            raise
        self.frames_out = 0
        self.data_packets = 0
        self.frame_slots = 0
        self.decoder_errors = 0
        self._packet_bytes = 0
        self.data_start: float | None = None
        self.data_end: float | None = None
        self.damaged: str | None = None  # why demuxing stopped early, when it did

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.container.close()

    # -- declared figures -------------------------------------------------------------------

    @property
    def time_base(self) -> Fraction:
        return Fraction(self.stream.time_base) if self.stream.time_base else Fraction(1, 1_000_000)

    def declared_duration(self) -> float | None:
        """Seconds the container declares for the video stream itself (None if it does not)."""
        s = self.stream
        if s.duration:
            return float(s.duration * self.time_base)
        tag = _parse_duration_tag(s.metadata.get("DURATION"))
        if tag:
            return tag
        if len(self.container.streams) == 1 and self.container.duration:
            return self.container.duration / 1_000_000
        return None

    def declared_frames(self) -> int | None:
        """Frames the container declares: its frame count, else its stated duration x rate; None
        for streams that state neither (MPEG-TS, Y4M, raw streams: FFmpeg only estimates them)."""
        if self.stream.frames and self.stream.frames > 0:
            return int(self.stream.frames)
        if _UNDECLARED_FORMATS & set(self.container.format.name.split(",")):
            return None
        duration, rate = self.declared_duration(), self.declared_rate()
        return round(duration * rate) if duration and rate else None

    def declared_rate(self) -> float | None:
        """The container's average frame rate in frames/s, if it states one."""
        for rate in (self.stream.average_rate, self.stream.guessed_rate, self.stream.base_rate):
            if rate and rate > 0:
                return float(rate)
        return None

    # -- packets and frames -----------------------------------------------------------------

    def _note_packet(self, packet: av.Packet) -> None:
        self.frame_slots += 1
        self._packet_bytes = self._packet_bytes or packet.size
        if packet.size > _PLACEHOLDER_BYTES:
            self.data_packets += 1
        if packet.pts is not None:
            start = float(packet.pts * self.time_base)
            length = float(packet.duration * self.time_base) if packet.duration else self.frame_interval
            end = start + length
            self.data_start = start if self.data_start is None else min(self.data_start, start)
            self.data_end = end if self.data_end is None else max(self.data_end, end)

    def packets(self) -> Iterator[av.Packet]:
        """Demux the video stream's packets (no decoding), recording counts and time span."""
        try:
            for packet in self.container.demux(self.stream):
                if packet.size == 0 and packet.pts is None:
                    continue  # the demuxer's end-of-stream marker
                self._note_packet(packet)
                yield packet
        except (av.error.FFmpegError, OSError, IndexError, ValueError) as e:
            # PyAV raises IndexError for some packet lists it cannot index
            reason = f"container data is damaged after {self.data_packets} packets ({_reason(e)})"
            if self.strict or self.data_packets == 0:
                raise VideoDecodeError(self.path, f"{reason}; {STRICT_HINT}" if self.data_packets else reason) from e
            self.damaged = reason

    def _decode(self, packet: av.Packet | None) -> list[av.VideoFrame]:
        try:
            return self.stream.decode(packet)
        except av.error.EOFError:
            return []
        except (av.error.FFmpegError, ValueError, IndexError):
            self.decoder_errors += 1
            return []

    def frames(self) -> Iterator[av.VideoFrame]:
        """Decode all frames in presentation order. At the end of a full pass, check for truncation
        and missing frames (see the module docstring). Stopping early skips those checks."""
        for packet in self.packets():
            for frame in self._decode(packet):
                self.frames_out += 1
                yield frame
        for frame in self._decode(None):
            self.frames_out += 1
            yield frame
        self.check_complete(frames_decoded=self.frames_out)

    def check_complete(self, *, frames_decoded: int | None) -> None:
        """After a full pass: raise on truncation or an empty stream, warn about skipped frames.

        ``frames_decoded`` is None after a demux-only pass (no decoding happened)."""
        if self.data_packets == 0 or frames_decoded == 0:
            raise VideoDecodeError(self.path, "the video stream holds no decodable frames")
        shortfall = self._shortfall()
        if shortfall is not None:
            if self.strict:
                raise VideoDecodeError(self.path, f"{shortfall}; {STRICT_HINT}")
            decoded = frames_decoded if frames_decoded is not None else self.data_packets
            warnings.warn(
                CorruptVideoWarning(
                    f"{self.path}: {shortfall}; the {decoded} frames that decode are used",
                    frames_decoded=frames_decoded,
                    frames_declared=self.declared_frames(),
                    truncated=True,
                ),
                stacklevel=3,
            )
        partial = self._ends_inside_a_unit()
        if partial:
            warnings.warn(
                CorruptVideoWarning(
                    f"{self.path}: the file looks truncated ({partial}); {frames_decoded or self.data_packets} frames "
                    "read, the container declares no frame count",
                    frames_decoded=frames_decoded,
                    truncated=True,
                ),
                stacklevel=3,
            )
        if frames_decoded is None:
            return
        # Some real files hold a packet or two that decode to nothing without an error (XviD's
        # trailing not-coded frames); more than that, or any decoder error, means damage.
        missing = self.data_packets - frames_decoded
        if missing > 1 + 0.01 * self.data_packets or self.decoder_errors:
            warnings.warn(
                CorruptVideoWarning(
                    f"{self.path}: corrupt data skipped: {frames_decoded} frames decoded from "
                    f"{self.data_packets} packets ({self.decoder_errors} decoder errors); frame indices "
                    "count the decoded frames",
                    frames_decoded=frames_decoded,
                    frames_declared=self.declared_frames(),
                ),
                stacklevel=3,
            )

    def _shortfall(self) -> str | None:
        """After a full pass: why the data ends before what the container declares (or where
        demuxing broke off), None when it does not."""
        if self.damaged:
            return self.damaged
        declared = self.declared_duration()
        if declared is not None and self.data_end is not None:
            start = float(self.stream.start_time * self.time_base) if self.stream.start_time is not None else 0.0
            covered = self.data_end - start
            if covered < declared - max(0.5 * self.frame_interval, 1e-3):
                return (
                    f"file is truncated: frame data ends at {covered:.3f} s but the container declares {declared:.3f} s"
                )
        declared_count = int(self.stream.frames or 0)
        if declared_count > self.frame_slots:
            return f"file is truncated: {self.frame_slots} frames of the {declared_count} the container declares"
        return None

    def _ends_inside_a_unit(self) -> str | None:
        """For containers without a frame count: a reason if the file ends inside an MPEG-TS
        packet (188, 192 or 204 bytes) or inside a Y4M frame, else None."""
        name = self.container.format.name
        size = self.path.stat().st_size
        if name == "mpegts":
            if all(size % unit for unit in (188, 192, 204)):
                return f"{size} bytes is not a whole number of transport packets"
        elif name == "yuv4mpegpipe" and self._packet_bytes:
            with open(self.path, "rb") as f:
                header = f.readline(4096)
            frame = len(b"FRAME\n") + self._packet_bytes
            if (size - len(header)) % frame:
                return "it ends inside a frame"
        return None


def _reason(e: BaseException) -> str:
    """A short reason from a PyAV/OS exception, without the repeated file name."""
    msg = getattr(e, "strerror", None) or str(e)
    return str(msg).strip() or type(e).__name__

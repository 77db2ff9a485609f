"""Video I/O with PyAV: probe, read (all / uniformly sampled / windowed / streamed in chunks),
write (lossless FFV1 or libx264rgb, lossy H.264), and a safetensors container for clip sets.

Bad input raises :class:`vidshield.errors.VideoDecodeError` naming the file and the reason;
frames skipped because of corrupt data are reported with a :class:`CorruptVideoWarning`.
"""

from vidshield.io._source import MAX_SIDE, CorruptVideoWarning
from vidshield.io.clips import load_clips, save_clips
from vidshield.io.probe import VideoInfo, probe
from vidshield.io.read import (
    VIDEO_EXTENSIONS,
    is_video_file,
    iter_chunks,
    iter_frames,
    read_frames,
    read_video,
    uniform_indices,
)
from vidshield.io.write import VideoWriter, write_video

__all__ = [
    "MAX_SIDE",
    "VIDEO_EXTENSIONS",
    "is_video_file",
    "CorruptVideoWarning",
    "VideoInfo",
    "probe",
    "read_frames",
    "read_video",
    "iter_chunks",
    "iter_frames",
    "uniform_indices",
    "write_video",
    "VideoWriter",
    "save_clips",
    "load_clips",
]

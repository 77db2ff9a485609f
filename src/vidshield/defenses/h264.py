"""Re-encoding baseline defense: H.264 (libx264) at a CRF, in memory, then decode back — what
ART's ``VideoCompression`` does. Used side by side with the temporal defense in the tables."""

from __future__ import annotations

import io

import numpy as np
import torch
import torch.nn.functional as F

from vidshield.defenses.base import Defense
from vidshield.defenses.registry import register_defense
from vidshield.errors import VideoEncodeError
from vidshield.video import check_batch, check_frame_mask, frames_to_tensor, to_uint8

__all__ = ["H264Defense", "h264_roundtrip"]

_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")


def h264_roundtrip(video: torch.Tensor, *, crf: int = 28, preset: str = "medium", fps: int = 25) -> torch.Tensor:
    """Encode one video ``(T, 3, H, W)`` float [0, 1] with libx264 (yuv420p, in memory) and decode it.

    Odd sizes are padded by replication to even (4:2:0 needs it) and cropped back.

    Returns:
        float32 ``(T, 3, H, W)`` in [0, 1] on the input's device.
    """
    import av  # PyAV only where a video is encoded: the rest of vidshield.defenses works without it

    t, _, h, w = video.shape
    ph, pw = h % 2, w % 2
    x = video.detach().to("cpu", torch.float32)
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="replicate")
    frames = to_uint8(x).permute(0, 2, 3, 1).contiguous().numpy()
    buf = io.BytesIO()
    try:
        with av.open(buf, mode="w", format="matroska") as container:
            stream = container.add_stream("libx264", rate=fps)
            stream.width, stream.height = frames.shape[2], frames.shape[1]
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": str(crf), "preset": preset}
            for frame in frames:
                container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
            container.mux(stream.encode(None))
    except (av.error.FFmpegError, ValueError) as e:
        raise VideoEncodeError(f"libx264 encoding failed: {e}") from e
    buf.seek(0)
    with av.open(buf, mode="r") as container:
        decoded = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    if decoded.shape[0] != t:
        raise VideoEncodeError(f"libx264 round trip returned {decoded.shape[0]} frames for {t}")
    return frames_to_tensor(decoded)[..., :h, :w].to(video.device)


@register_defense("h264", crf=28)
class H264Defense(Defense):
    """Whole-video H.264 re-encoding at a CRF (ART's ``VideoCompression``; Armory uses CRF 28).

    Args:
        crf: libx264 constant rate factor 0..51 (higher = stronger compression).
        preset: libx264 preset.
        fps: the frame rate the stream is encoded at (the rate control sees it).

    Shape:
        ``forward(video (N, T, 3, H, W) float [0, 1], *, polluted=None, generator=None) -> same``:
        every video is encoded whole; with ``polluted``, only the marked frames of the result
        replace the input's. Not differentiable (BPDA surrogate: identity). Not bit-reproducible:
        libx264 through PyAV here returns a different encode now and then for the same input (about
        1 call in 40 on 6 frames of noise, also with one encoder thread), so two calls may differ.
    """

    differentiable = False

    def __init__(self, *, crf: int = 28, preset: str = "medium", fps: int = 25) -> None:
        super().__init__()
        if isinstance(crf, bool) or not isinstance(crf, int) or not 0 <= crf <= 51:
            raise ValueError(f"crf must be an int in [0, 51], got {crf!r}")
        if preset not in _PRESETS:
            raise ValueError(f"preset must be one of {_PRESETS}, got {preset!r}")
        if isinstance(fps, bool) or not isinstance(fps, int) or fps < 1:
            raise ValueError(f"fps must be an int >= 1, got {fps!r}")
        self.crf, self.preset, self.fps = crf, preset, fps

    def extra_repr(self) -> str:
        return f"crf={self.crf}, preset={self.preset!r}, fps={self.fps}"

    @torch.no_grad()
    def forward(self, video: torch.Tensor, *, polluted=None, generator=None) -> torch.Tensor:
        """Re-encode every video of the batch; keep the marked frames only when ``polluted`` is given."""
        check_batch(video)
        out = torch.stack([h264_roundtrip(v, crf=self.crf, preset=self.preset, fps=self.fps) for v in video])
        out = out.to(video.dtype)
        if polluted is None:
            return out
        check_frame_mask(polluted, *video.shape[:2], name="polluted")
        mask = polluted.to(video.device).view(*polluted.shape, 1, 1, 1)
        return torch.where(mask, out, video)

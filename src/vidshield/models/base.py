"""The :class:`VideoClassifier` interface and the input spec stored with every model."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class InputSpec:
    """What a model expects: ``frames`` per clip (T), spatial ``height`` x ``width``, and the
    per-channel ``mean``/``std`` applied inside the model to [0, 1] RGB input."""

    frames: int
    height: int
    width: int
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.25, 0.25, 0.25)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> InputSpec:
        return cls(
            frames=int(d["frames"]),
            height=int(d["height"]),
            width=int(d["width"]),
            mean=tuple(float(v) for v in d.get("mean", (0.5, 0.5, 0.5))),
            std=tuple(float(v) for v in d.get("std", (0.25, 0.25, 0.25))),
        )


class VideoClassifier(nn.Module):
    """Base class of the victim classifiers.

    Shape:
        ``forward(video)``: ``float32 (N, T, 3, H, W)`` in [0, 1] -> logits ``(N, K)``.
        ``frame_logits(video)``: -> per-frame logits ``(N, T, K)`` where the model has a
        per-frame path (the CNN+LSTM with recurrence removed); others raise ``NotImplementedError``.

    Subclasses set ``input_spec`` (:class:`InputSpec`) and ``num_classes``; normalisation with the
    spec's mean/std happens inside the model, so every caller passes plain [0, 1] RGB.
    ``arch_name`` and ``arch_config`` (the registry name and the keyword arguments given to
    :func:`vidshield.models.create_model`) let a checkpoint rebuild the model; ``class_names`` is
    filled when the model comes from a checkpoint that names its classes.
    """

    input_spec: InputSpec
    num_classes: int
    has_frame_logits: bool = False
    arch_name: str | None = None
    arch_config: dict | None = None
    class_names: list[str] | None = None

    def frame_logits(self, video: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} has no per-frame path")

    def check_input(self, video: torch.Tensor, *, exact_frames: bool) -> None:
        """Raise a ``ValueError`` unless ``video`` is a float batch ``(N, T, 3, H, W)`` with the
        spec's H x W (and the spec's T when ``exact_frames``). The [0, 1] range is not checked here
        (one pass over the data per call); attacks call ``forward`` many times."""
        spec = self.input_spec
        expected = f"(N, {spec.frames}, 3, {spec.height}, {spec.width})"
        if not isinstance(video, torch.Tensor) or video.dim() != 5 or not video.is_floating_point():
            got = (
                f"shape {tuple(video.shape)}, dtype {video.dtype}"
                if isinstance(video, torch.Tensor)
                else type(video).__name__
            )
            raise ValueError(f"{type(self).__name__} expects a float batch {expected} in [0, 1]; got {got}")
        n, t, c, h, w = video.shape
        if c != 3 or (h, w) != (spec.height, spec.width) or (exact_frames and t != spec.frames) or n == 0 or t == 0:
            what = (
                f"{spec.frames}x{spec.height}x{spec.width}" if exact_frames else f"frames of {spec.height}x{spec.width}"
            )
            raise ValueError(
                f"{type(self).__name__} ({self.arch_name or 'custom'}) expects clips of {what} "
                f"{expected}; got shape {tuple(video.shape)} (build the data set from model.input_spec)"
            )


def normalize_video(video: torch.Tensor, spec: InputSpec) -> torch.Tensor:
    """``(x - mean) / std`` per RGB channel. Shape: ``(N, T, 3, H, W)`` -> same; new tensor."""
    mean = video.new_tensor(spec.mean).view(1, 1, 3, 1, 1)
    std = video.new_tensor(spec.std).view(1, 1, 3, 1, 1)
    return (video - mean) / std


def with_frame_differences(x: torch.Tensor) -> torch.Tensor:
    """Append each frame's difference to the frame before it as 3 more channels (the motion input
    of ``motion=True`` models; the first frame's difference is 0).

    Shape: ``(N, T, 3, H, W)`` (normalised) -> ``(N, T, 6, H, W)``; new tensor.
    """
    diff = torch.cat([torch.zeros_like(x[:, :1]), x[:, 1:] - x[:, :-1]], dim=1)
    return torch.cat([x, diff], dim=2)

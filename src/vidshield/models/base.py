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
    def from_dict(cls, d: dict) -> "InputSpec":
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
    """

    input_spec: InputSpec
    num_classes: int
    has_frame_logits: bool = False

    def frame_logits(self, video: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} has no per-frame path")

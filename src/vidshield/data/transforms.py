"""Spatial transforms of one video, float ``(T, 3, H, W)`` in [0, 1] -> same layout and range.

Every frame of a clip gets the same crop and flip, so motion between frames is kept. Training
uses scale-then-crop: resize so the short side is ``8/7`` of the target (128 for 112, the C3D
recipe), take a random ``(H, W)`` crop and flip horizontally with probability 0.5. Evaluation
scales the short side to the target and takes the centre crop.

Functions never modify their input; random ones take a ``torch.Generator`` (``None`` uses the
global RNG, which a DataLoader seeds per worker).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from vidshield.video import check_video

__all__ = [
    "TRAIN_SCALE",
    "resize",
    "short_side_resize",
    "center_crop",
    "random_crop",
    "horizontal_flip",
    "random_resized_crop",
    "color_jitter",
    "Compose",
    "ShortSideResize",
    "CenterCrop",
    "RandomCrop",
    "RandomHorizontalFlip",
    "train_short_side",
    "eval_short_side",
    "train_transform",
    "eval_transform",
]

TRAIN_SCALE = 8 / 7  # short side of the training resize, relative to the crop (128 / 112)


def _check_one(video: torch.Tensor) -> None:
    check_video(video, check_range=False)
    if video.dim() != 4:
        raise ValueError(f"expected one video (T, 3, H, W), got shape {tuple(video.shape)}")


def _check_size(size: Sequence[int]) -> tuple[int, int]:
    if len(size) != 2 or any(int(s) < 1 for s in size):
        raise ValueError(f"size must be (height, width) with positive entries, got {size!r}")
    return int(size[0]), int(size[1])


def resize(video: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Bilinear (antialiased when shrinking) resize to exactly ``size = (H, W)``.

    Shape: ``(T, 3, h, w)`` -> ``(T, 3, H, W)``; values stay in [0, 1].
    """
    _check_one(video)
    h, w = _check_size(size)
    if tuple(video.shape[-2:]) == (h, w):
        return video
    out = F.interpolate(video, size=(h, w), mode="bilinear", align_corners=False, antialias=True)
    return out.clamp_(0.0, 1.0)


def short_side_resize(video: torch.Tensor, short_side: int) -> torch.Tensor:
    """Resize keeping the aspect ratio so the shorter side becomes ``short_side`` pixels."""
    _check_one(video)
    if short_side < 1:
        raise ValueError(f"short_side must be >= 1, got {short_side}")
    h, w = video.shape[-2:]
    if h <= w:
        return resize(video, (short_side, max(1, round(w * short_side / h))))
    return resize(video, (max(1, round(h * short_side / w)), short_side))


def _crop(video: torch.Tensor, top: int, left: int, h: int, w: int) -> torch.Tensor:
    return video[..., top : top + h, left : left + w]


def _check_fits(video: torch.Tensor, h: int, w: int) -> None:
    if video.shape[-2] < h or video.shape[-1] < w:
        raise ValueError(f"cannot crop {h}x{w} from a {video.shape[-2]}x{video.shape[-1]} video; resize first")


def center_crop(video: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """The central ``(H, W)`` window (a view of the input). Shape ``(T, 3, h, w)`` -> ``(T, 3, H, W)``."""
    _check_one(video)
    h, w = _check_size(size)
    _check_fits(video, h, w)
    return _crop(video, (video.shape[-2] - h) // 2, (video.shape[-1] - w) // 2, h, w)


def random_crop(video: torch.Tensor, size: Sequence[int], *, generator: torch.Generator | None = None) -> torch.Tensor:
    """A uniformly placed ``(H, W)`` window, the same for every frame (a view of the input)."""
    _check_one(video)
    h, w = _check_size(size)
    _check_fits(video, h, w)
    top = int(torch.randint(video.shape[-2] - h + 1, (), generator=generator))
    left = int(torch.randint(video.shape[-1] - w + 1, (), generator=generator))
    return _crop(video, top, left, h, w)


def horizontal_flip(video: torch.Tensor) -> torch.Tensor:
    """Mirror every frame left-right (a new tensor)."""
    _check_one(video)
    return video.flip(-1)


def random_resized_crop(
    video: torch.Tensor,
    size: Sequence[int],
    *,
    scale: tuple[float, float] = (0.5, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """A random window of ``scale`` times the frame area and aspect ``ratio`` (log-uniform),
    clipped to the frame, resized to ``size``; the same window for every frame.

    Shape: ``(T, 3, h, w)`` -> ``(T, 3, H, W)``; values stay in [0, 1].
    """
    _check_one(video)
    h, w = video.shape[-2:]
    u = torch.rand(3, generator=generator, dtype=torch.float64).tolist()
    area = h * w * (scale[0] + u[0] * (scale[1] - scale[0]))
    aspect = math.exp(math.log(ratio[0]) + u[1] * (math.log(ratio[1]) - math.log(ratio[0])))
    ch = max(1, min(h, round(math.sqrt(area / aspect))))
    cw = max(1, min(w, round(math.sqrt(area * aspect))))
    top = int(torch.randint(h - ch + 1, (), generator=generator))
    left = int(torch.randint(w - cw + 1, (), generator=generator))
    return resize(_crop(video, top, left, ch, cw), size)


def color_jitter(video: torch.Tensor, strength: float, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random brightness, contrast and saturation factors in ``[1 - strength, 1 + strength]``, the
    same for every frame (a new tensor, clipped to [0, 1]). ``strength`` in [0, 1)."""
    _check_one(video)
    if not 0 <= strength < 1:
        raise ValueError(f"colour-jitter strength must be in [0, 1), got {strength}")
    b, c, s = (1 + strength * (2 * torch.rand(3, generator=generator, dtype=torch.float64) - 1)).tolist()
    out = video * b
    out = (out - out.mean()) * c + out.mean()
    grey = 0.299 * out[:, 0:1] + 0.587 * out[:, 1:2] + 0.114 * out[:, 2:3]
    return ((out - grey) * s + grey).clamp_(0.0, 1.0)


class Compose:
    """Apply transforms in order."""

    def __init__(self, transforms: Sequence[Callable[[torch.Tensor], torch.Tensor]]):
        self.transforms = list(transforms)

    def __call__(self, video: torch.Tensor) -> torch.Tensor:
        for transform in self.transforms:
            video = transform(video)
        return video

    def __repr__(self) -> str:
        return f"Compose({self.transforms!r})"


class ShortSideResize:
    """:func:`short_side_resize` as a transform."""

    def __init__(self, short_side: int):
        self.short_side = int(short_side)

    def __call__(self, video: torch.Tensor) -> torch.Tensor:
        return short_side_resize(video, self.short_side)

    def __repr__(self) -> str:
        return f"ShortSideResize({self.short_side})"


class CenterCrop:
    """:func:`center_crop` as a transform."""

    def __init__(self, size: Sequence[int]):
        self.size = _check_size(size)

    def __call__(self, video: torch.Tensor) -> torch.Tensor:
        return center_crop(video, self.size)

    def __repr__(self) -> str:
        return f"CenterCrop({self.size})"


class RandomCrop:
    """:func:`random_crop` as a transform."""

    def __init__(self, size: Sequence[int], *, generator: torch.Generator | None = None):
        self.size = _check_size(size)
        self.generator = generator

    def __call__(self, video: torch.Tensor) -> torch.Tensor:
        return random_crop(video, self.size, generator=self.generator)

    def __repr__(self) -> str:
        return f"RandomCrop({self.size})"


class RandomHorizontalFlip:
    """Flip the whole clip left-right with probability ``p``."""

    def __init__(self, p: float = 0.5, *, generator: torch.Generator | None = None):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {p}")
        self.p = float(p)
        self.generator = generator

    def __call__(self, video: torch.Tensor) -> torch.Tensor:
        if float(torch.rand((), generator=self.generator)) < self.p:
            return horizontal_flip(video)
        return video

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip(p={self.p})"


def eval_short_side(size: Sequence[int]) -> int:
    """Short side to scale to before a centre crop of ``size``: the crop's longer side."""
    return max(_check_size(size))


def model_view_chunks(path, spec, *, chunk_frames: int):
    """A video file streamed as the model sees it, the one preprocessing of ``scan``, ``detect`` and
    ``defend``: every frame decoded, the short side scaled to :func:`eval_short_side`, a centre crop
    of ``spec.height x spec.width`` (like the evaluation data sets).

    Yields:
        ``(start frame, float32 (t, 3, spec.height, spec.width))`` chunks of ``chunk_frames`` frames.
    """
    from vidshield.io import iter_chunks

    size = (int(spec.height), int(spec.width))
    yield from iter_chunks(path, chunk_frames=chunk_frames, short_side=eval_short_side(size), crop=size)


def train_short_side(size: Sequence[int], scale: float = TRAIN_SCALE) -> int:
    """Short side to scale to before a random crop of ``size``: ``ceil(scale * max(size))``."""
    if scale < 1.0:
        raise ValueError(f"scale must be >= 1, got {scale}")
    return math.ceil(scale * max(_check_size(size)) - 1e-9)


def train_transform(
    size: Sequence[int], *, scale: float = TRAIN_SCALE, flip: bool = True, generator: torch.Generator | None = None
) -> Compose:
    """Scale-then-crop augmentation: short side to ``train_short_side(size)``, random crop,
    horizontal flip (``flip=True``)."""
    steps: list[Callable[[torch.Tensor], torch.Tensor]] = [
        ShortSideResize(train_short_side(size, scale)),
        RandomCrop(size, generator=generator),
    ]
    if flip:
        steps.append(RandomHorizontalFlip(generator=generator))
    return Compose(steps)


def eval_transform(size: Sequence[int]) -> Compose:
    """Short side to the crop's longer side, then the centre crop of ``size``."""
    return Compose([ShortSideResize(eval_short_side(size)), CenterCrop(size)])

"""Synthetic action videos: the embedded default data set.

Each class is an *actor* with its own appearance (shape, colour, texture), so a single frame is
recognisable, and its own motion pattern (orbit, bounce, zig-zag, grow/shrink, ...). Every clip
draws its own position, size, speed, phase, background, camera pan and brightness drift, so a
model has to generalise. Backgrounds are smooth random Fourier noise; the camera pans slowly
(sub-pixel per frame) and the scene is rendered analytically at each frame's pan offset, so
neighbouring frames differ by small smooth motions and block matching works as on real footage.

Clips are generated on the fly, deterministically from ``(seed, index)`` alone: no global RNG is
touched. Classes ``0..9`` pair appearance ``k`` with motion ``k``; classes ``10..99`` reuse the
ten appearances with other motions (``appearance = k % 10``, ``motion = (k + k // 10) % 10``), so
beyond ten classes single frames are no longer enough and the motion has to be used.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import Dataset

from vidshield.data.datasets import CLASS_LIST_FILE
from vidshield.errors import DataRootError
from vidshield.io import write_video
from vidshield.jsonio import read_json
from vidshield.utils import atomic_write_bytes, atomic_write_json

__all__ = [
    "APPEARANCES",
    "MOTIONS",
    "MAX_SYNTHETIC_CLASSES",
    "Appearance",
    "SyntheticActions",
    "clip_generator",
    "export_synthetic",
    "generate_clip",
    "synthetic_class_names",
    "synthetic_split_seed",
]


@dataclass(frozen=True)
class Appearance:
    """An actor's look: ``shape`` (a signed-distance shape), RGB ``colour`` in [0, 1], ``texture``."""

    shape: str
    colour: tuple[float, float, float]
    texture: str


APPEARANCES: tuple[Appearance, ...] = (
    Appearance("disc", (0.92, 0.14, 0.12), "solid"),
    Appearance("square", (0.12, 0.30, 0.95), "checker"),
    Appearance("triangle", (0.10, 0.82, 0.20), "solid"),
    Appearance("ring", (0.98, 0.86, 0.10), "solid"),
    Appearance("diamond", (1.00, 0.50, 0.05), "dots"),
    Appearance("cross", (0.86, 0.10, 0.86), "solid"),
    Appearance("bar", (0.10, 0.86, 0.92), "stripes"),
    Appearance("ellipse", (0.50, 0.20, 0.88), "stripes"),
    Appearance("frame", (0.97, 0.97, 0.97), "solid"),
    Appearance("dumbbell", (0.07, 0.07, 0.07), "checker"),
)
MOTIONS: tuple[str, ...] = (
    "orbit",  # circles around a centre
    "bounce",  # back and forth horizontally
    "zigzag",  # slow horizontal sweep, fast vertical zig-zag
    "pulse",  # grows and shrinks in place
    "diagonal",  # back and forth along a diagonal
    "spin",  # rotates in place
    "updown",  # back and forth vertically
    "figure8",  # Lissajous figure eight
    "wave",  # slow vertical sweep with a horizontal sine
    "swing",  # pendulum: swings on an arc below a pivot, tilting with it
)
MAX_SYNTHETIC_CLASSES = len(APPEARANCES) * len(MOTIONS)

_SPLIT_OFFSETS = {"train": 0, "val": 1, "test": 2}
_NOISE_SIGMA = 1.5 / 255  # sensor noise, on the [0, 1] scale
_EDGE_PX = 1.2  # width of the anti-aliased actor edge, in pixels
_BACKGROUND_COMPONENTS = 16


def _class_parts(label: int) -> tuple[Appearance, str]:
    n = len(APPEARANCES)
    return APPEARANCES[label % n], MOTIONS[(label + label // n) % len(MOTIONS)]


def synthetic_class_names(num_classes: int = 10) -> list[str]:
    """Names of the first ``num_classes`` synthetic classes, e.g. ``"disc-orbit"``."""
    _check_num_classes(num_classes)
    return [f"{a.shape}-{m}" for a, m in map(_class_parts, range(num_classes))]


def synthetic_split_seed(seed: int, split: str) -> int:
    """The generator seed of a split: train, val and test of one ``seed`` never share clips."""
    if split not in _SPLIT_OFFSETS:
        raise ValueError(f"split must be one of {sorted(_SPLIT_OFFSETS)}, got {split!r}")
    return 3 * int(seed) + _SPLIT_OFFSETS[split]


def clip_generator(seed: int, index: int) -> torch.Generator:
    """A ``torch.Generator`` seeded from a stable hash of ``(seed, index)``."""
    digest = hashlib.blake2b(f"vidshield-synthetic:{int(seed)}:{int(index)}".encode(), digest_size=8).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest, "little") & (2**63 - 1))


def _check_num_classes(num_classes: int) -> None:
    if not 1 <= num_classes <= MAX_SYNTHETIC_CLASSES:
        raise ValueError(f"num_classes must be in [1, {MAX_SYNTHETIC_CLASSES}], got {num_classes}")


def _check_geometry(frames: int, height: int, width: int) -> None:
    if frames < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    if height < 16 or width < 16:
        raise ValueError(f"height and width must be >= 16 pixels, got {height}x{width}")


# ---------------------------------------------------------------- random draws


def _uniform(g: torch.Generator, lo: float, hi: float, shape: Sequence[int] = ()) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(tuple(shape), generator=g)


def _sign(g: torch.Generator) -> float:
    return 1.0 if float(torch.rand((), generator=g)) < 0.5 else -1.0


def _triangle(phase: torch.Tensor) -> torch.Tensor:
    """Triangle wave with period 1, values in [-1, 1]."""
    return 2.0 * torch.abs(2.0 * torch.remainder(phase, 1.0) - 1.0) - 1.0


# ---------------------------------------------------------------- motion


def _trajectory(motion: str, t: torch.Tensor, g: torch.Generator) -> tuple[torch.Tensor, ...]:
    """Actor centre (x, y), size factor and angle per frame, in units of half the short side.

    ``t`` holds the frame indices (T,); speeds are per frame, so longer clips show more of the
    pattern rather than a faster one. Translational speeds stay under ~0.1 units (about 6 px at
    112x112) per frame.
    """
    speed = float(_uniform(g, 0.75, 1.25))
    phase = float(_uniform(g, 0.0, 1.0))
    direction = _sign(g)
    ox, oy = (float(v) for v in _uniform(g, -0.12, 0.12, (2,)))
    tilt = float(_uniform(g, -0.3, 0.3))
    zero = torch.zeros_like(t)
    size = torch.ones_like(t)
    angle = zero + tilt
    x, y = zero + ox, zero + oy
    cycles = speed * t  # elapsed time, speed-scaled, in frames
    if motion == "orbit":
        radius = float(_uniform(g, 0.35, 0.5))
        a = direction * 2 * math.pi * cycles / 36 + 2 * math.pi * phase
        x, y = ox + radius * torch.cos(a), oy + radius * torch.sin(a)
    elif motion == "bounce":
        x = ox + 0.55 * _triangle(cycles / 32 + phase)
    elif motion == "zigzag":
        x = ox + 0.5 * _triangle(direction * cycles / 48 + phase)
        y = oy + 0.2 * _triangle(cycles / 10 + phase)
    elif motion == "pulse":
        size = 1.0 + 0.35 * torch.sin(2 * math.pi * (cycles / 20 + phase))
    elif motion == "diagonal":
        dy = direction * 0.45
        p = _triangle(cycles / 32 + phase)
        x, y = ox + 0.45 * p, oy + dy * p
    elif motion == "spin":
        angle = tilt + direction * 2 * math.pi * cycles / 24
    elif motion == "updown":
        y = oy + 0.5 * _triangle(cycles / 32 + phase)
    elif motion == "figure8":
        a = 2 * math.pi * (direction * cycles / 48 + phase)
        x, y = ox + 0.5 * torch.sin(a), oy + 0.3 * torch.sin(2 * a)
    elif motion == "wave":
        y = oy + 0.45 * _triangle(direction * cycles / 48 + phase)
        x = ox + 0.25 * torch.sin(2 * math.pi * (cycles / 16 + phase))
    elif motion == "swing":
        a = 0.7 * torch.sin(2 * math.pi * (cycles / 28 + phase))
        x, y = ox + 0.55 * torch.sin(a), oy - 0.4 + 0.55 * torch.cos(a)
        angle = tilt - a
    else:  # pragma: no cover - MOTIONS is closed
        raise AssertionError(motion)
    return x, y, size, angle


# ---------------------------------------------------------------- shapes and textures


def _box(u: torch.Tensor, v: torch.Tensor, bu: float, bv: float) -> torch.Tensor:
    qu, qv = u.abs() - bu, v.abs() - bv
    outside = torch.sqrt(qu.clamp(min=0) ** 2 + qv.clamp(min=0) ** 2)
    return outside + torch.maximum(qu, qv).clamp(max=0)


def _triangle_sdf(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Equilateral triangle with circumradius ~1, pointing up (image y grows downwards)."""
    k = math.sqrt(3.0)
    px, py = u.abs() - 1.0, -v + 1.0 / k
    fold = px + k * py > 0
    px, py = torch.where(fold, (px - k * py) / 2, px), torch.where(fold, (-k * px - py) / 2, py)
    px = px - px.clamp(-2.0, 0.0)
    return -torch.sqrt(px * px + py * py) * torch.sign(py)


def _shape_sdf(shape: str, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Signed distance (negative inside) in actor-local units; every shape spans about [-1, 1]."""
    r = torch.sqrt(u * u + v * v)
    if shape == "disc":
        return r - 1.0
    if shape == "square":
        return _box(u, v, 0.85, 0.85)
    if shape == "triangle":
        return _triangle_sdf(u * 1.1, v * 1.1 - 0.15) / 1.1
    if shape == "ring":
        return (r - 0.75).abs() - 0.25
    if shape == "diamond":
        return (u.abs() + v.abs() - 1.1) / math.sqrt(2.0)
    if shape == "cross":
        return torch.minimum(_box(u, v, 1.0, 0.3), _box(u, v, 0.3, 1.0))
    if shape == "bar":
        return _box(u, v, 1.15, 0.38)
    if shape == "ellipse":
        return (torch.sqrt(u * u + (v / 0.55) ** 2) - 1.0) * 0.55
    if shape == "frame":
        return _box(u, v, 0.8, 0.8).abs() - 0.2
    if shape == "dumbbell":
        left = torch.sqrt((u + 0.65) ** 2 + v * v) - 0.5
        right = torch.sqrt((u - 0.65) ** 2 + v * v) - 0.5
        return torch.minimum(torch.minimum(left, right), _box(u, v, 0.65, 0.16))
    raise AssertionError(shape)  # pragma: no cover - APPEARANCES is closed


def _texture(texture: str, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Brightness factor in [0.45, 1.05] over the actor, moving with it."""
    shading = 0.95 - 0.08 * v  # lit from above, so flat actors still have a gradient
    if texture == "solid":
        return shading
    if texture == "checker":
        return shading * (0.75 + 0.25 * torch.tanh(3 * torch.sin(2.2 * math.pi * u) * torch.sin(2.2 * math.pi * v)))
    if texture == "stripes":
        return shading * (0.72 + 0.28 * torch.sin(2.5 * math.pi * u))
    if texture == "dots":
        return shading * (0.75 + 0.25 * torch.cos(2 * math.pi * u) * torch.cos(2 * math.pi * v))
    raise AssertionError(texture)  # pragma: no cover - APPEARANCES is closed


# ---------------------------------------------------------------- background


def _background(
    g: torch.Generator, xs: torch.Tensor, ys: torch.Tensor, pan_x: torch.Tensor, pan_y: torch.Tensor
) -> torch.Tensor:
    """Random smooth Fourier noise seen through a panning camera: ``(T, 3, H, W)``.

    ``sin(w . (p + pan_t) + phi) = sin(w . p) cos(w . pan_t + phi) + cos(w . p) sin(w . pan_t + phi)``
    separates space from time, so the whole clip costs two small matrix products.
    """
    k = _BACKGROUND_COMPONENTS
    freq = torch.exp(_uniform(g, math.log(0.8), math.log(14.0), (k,)))  # rad per unit
    theta = _uniform(g, 0.0, 2 * math.pi, (k,))
    wx, wy = freq * torch.cos(theta), freq * torch.sin(theta)
    phi = _uniform(g, 0.0, 2 * math.pi, (k,))
    amplitude = 0.11 / (1.0 + freq / 2.5)  # (k,), a 1/f-like spectrum
    tint = 1.0 + _uniform(g, -0.3, 0.3, (3, k))  # colour texture: channels differ a little
    base = float(_uniform(g, 0.3, 0.62)) + _uniform(g, -0.05, 0.05, (3,))

    spatial = wx[:, None] * xs.reshape(1, -1) + wy[:, None] * ys.reshape(1, -1)  # (k, HW)
    temporal = wx[None] * pan_x[:, None] + wy[None] * pan_y[:, None] + phi[None]  # (T, k)
    coeff = amplitude[None, None] * tint[None]  # (1, 3, k)
    sin_part = torch.einsum("tck,kp->tcp", coeff * torch.cos(temporal)[:, None], torch.sin(spatial))
    cos_part = torch.einsum("tck,kp->tcp", coeff * torch.sin(temporal)[:, None], torch.cos(spatial))
    t = pan_x.shape[0]
    return (base[None, :, None] + sin_part + cos_part).reshape(t, 3, *xs.shape)


# ---------------------------------------------------------------- the clip


def generate_clip(
    label: int,
    *,
    generator: torch.Generator,
    num_classes: int = 10,
    frames: int = 16,
    height: int = 112,
    width: int = 112,
) -> torch.Tensor:
    """Render one synthetic clip of class ``label``.

    Args:
        label: class index in ``[0, num_classes)``.
        generator: the only source of randomness (position, size, speed, background, pan,
            brightness drift, noise); the same generator state gives the same clip.
        num_classes: number of classes of the data set (checks ``label``; a class looks the same
            whatever ``num_classes`` is).
        frames, height, width: clip size T, H, W (H, W >= 16).

    Returns:
        ``float32 (T, 3, H, W)`` in [0, 1].
    """
    _check_num_classes(num_classes)
    _check_geometry(frames, height, width)
    if not 0 <= int(label) < num_classes:
        raise ValueError(f"label must be in [0, {num_classes}), got {label}")
    appearance, motion = _class_parts(int(label))
    g = generator

    unit = min(height, width) / 2.0  # pixels per unit
    ys = (torch.arange(height, dtype=torch.float32) + 0.5 - height / 2.0) / unit
    xs = (torch.arange(width, dtype=torch.float32) + 0.5 - width / 2.0) / unit
    ys, xs = torch.meshgrid(ys, xs, indexing="ij")  # (H, W) each
    t = torch.arange(frames, dtype=torch.float32)
    centred_t = t - (frames - 1) / 2.0

    # camera: slow pan (0.1-0.4 px per frame at 112x112), centred on the middle frame
    pan_speed = float(_uniform(g, 0.002, 0.007))
    pan_dir = float(_uniform(g, 0.0, 2 * math.pi))
    pan_x = pan_speed * math.cos(pan_dir) * centred_t
    pan_y = pan_speed * math.sin(pan_dir) * centred_t

    video = _background(g, xs, ys, pan_x, pan_y)

    # actor, in world coordinates, seen through the same camera
    cx, cy, size_factor, angle = _trajectory(motion, t, g)
    size = float(_uniform(g, 0.22, 0.32)) * size_factor  # (T,), units
    colour = torch.tensor(appearance.colour) * (1.0 + _uniform(g, -0.06, 0.06, (3,)))
    dx = xs[None] - (cx - pan_x)[:, None, None]
    dy = ys[None] - (cy - pan_y)[:, None, None]
    cos_a, sin_a = torch.cos(angle)[:, None, None], torch.sin(angle)[:, None, None]
    inv_size = (1.0 / size)[:, None, None]
    u = (dx * cos_a + dy * sin_a) * inv_size
    v = (dy * cos_a - dx * sin_a) * inv_size
    distance_px = _shape_sdf(appearance.shape, u, v) * (size * unit)[:, None, None]
    alpha = (0.5 - distance_px / _EDGE_PX).clamp(0.0, 1.0)[:, None]  # (T, 1, H, W)
    actor = colour[None, :, None, None] * _texture(appearance.texture, u, v)[:, None]
    video = video + alpha * (actor - video)

    # brightness drift (up to about +-0.4 % per frame) and sensor noise
    gain = 1.0 + float(_uniform(g, -0.004, 0.004)) * centred_t
    video = video * gain[:, None, None, None]
    video = video + _NOISE_SIGMA * torch.randn(video.shape, generator=g)
    return video.clamp_(0.0, 1.0)


class SyntheticActions(Dataset):
    """``num_videos`` synthetic clips, generated on the fly; item ``i`` has label ``i % num_classes``.

    Args:
        num_videos: data set length.
        num_classes: K in ``[1, 100]``; the first ten classes differ in appearance and motion.
        frames, height, width: clip size T, H, W.
        seed: data set seed; item ``i`` depends only on ``(seed, i)``.
        transform: optional callable applied to each clip (float ``(T, 3, H, W)`` -> same layout).

    Returns (per item):
        ``(video, label)``: ``float32 (T, 3, H, W)`` in [0, 1] and an ``int``.
    """

    def __init__(
        self,
        num_videos: int,
        *,
        num_classes: int = 10,
        frames: int = 16,
        height: int = 112,
        width: int = 112,
        seed: int = 0,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ):
        if num_videos < 0:
            raise ValueError(f"num_videos must be >= 0, got {num_videos}")
        _check_num_classes(num_classes)
        _check_geometry(frames, height, width)
        self.num_videos = int(num_videos)
        self.num_classes = int(num_classes)
        self.frames, self.height, self.width = int(frames), int(height), int(width)
        self.seed = int(seed)
        self.transform = transform
        self.classes = synthetic_class_names(num_classes)

    def __len__(self) -> int:
        return self.num_videos

    @property
    def labels(self) -> list[int]:
        """Label of every item, in order."""
        return [i % self.num_classes for i in range(self.num_videos)]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        if not -self.num_videos <= index < self.num_videos:
            raise IndexError(f"index {index} out of range for {self.num_videos} videos")
        index = index % self.num_videos
        label = index % self.num_classes
        video = generate_clip(
            label,
            generator=clip_generator(self.seed, index),
            num_classes=self.num_classes,
            frames=self.frames,
            height=self.height,
            width=self.width,
        )
        if self.transform is not None:
            video = self.transform(video)
        return video, label

    def __repr__(self) -> str:
        return (
            f"SyntheticActions(num_videos={self.num_videos}, num_classes={self.num_classes}, "
            f"frames={self.frames}, height={self.height}, width={self.width}, seed={self.seed})"
        )


def export_synthetic(
    out_dir: str | os.PathLike,
    *,
    num_videos: int,
    splits: Sequence[str] | None = ("train", "test"),
    seed: int = 0,
    num_classes: int = 10,
    frames: int = 16,
    height: int = 112,
    width: int = 112,
    fps: float = 25.0,
    progress: Callable[[int], None] | None = None,
) -> dict[str, list[Path]]:
    """Write synthetic clips as lossless FFV1 ``.mkv`` files in a folder-per-class tree.

    With ``splits`` the tree is ``out_dir/<split>/<class>/<split>_<index>.mkv`` with
    ``num_videos`` clips per split, each split rendered with :func:`synthetic_split_seed`, so
    ``VideoFolder(out_dir / split)`` returns exactly what ``make_dataset("synthetic", split=...)``
    generates (up to the uint8 rounding of the file). With ``splits=None`` the tree is
    ``out_dir/<class>/clip_<index>.mkv`` from ``seed`` itself. Files already present are kept,
    so an interrupted export resumes (files are written atomically). Each tree gets a
    ``classes.txt`` (names in label order, which :class:`VideoFolder` reads) and ``out_dir``
    gets ``synthetic.json`` with the parameters; resuming into a folder exported with other
    parameters raises :class:`DataRootError`.

    Args:
        progress: called with 1 after each clip written or found (for a progress bar).

    Returns:
        ``{split: [paths in index order]}`` (split ``""`` when ``splits`` is None).
    """
    if num_videos < 0:
        raise ValueError(f"num_videos must be >= 0, got {num_videos}")
    out_dir = Path(out_dir)
    classes = synthetic_class_names(num_classes)
    plan = [(s, synthetic_split_seed(seed, s), out_dir / s) for s in splits] if splits else [("", seed, out_dir)]
    if splits and len(set(splits)) != len(splits):
        raise ValueError(f"splits must be distinct, got {list(splits)}")
    params = {
        "generator": "vidshield.data.synthetic",
        "splits": {s: sd for s, sd, _ in plan},
        "seed": seed,
        "num_classes": num_classes,
        "classes": classes,
        "frames": frames,
        "height": height,
        "width": width,
        "fps": fps,
    }
    meta_path = out_dir / "synthetic.json"
    if meta_path.is_file():
        old = read_json(meta_path, error=DataRootError)
        if not isinstance(old.get("splits", {}), dict):
            raise DataRootError(f"{str(meta_path)!r}: 'splits' must be an object; delete it or choose another folder")
        changed = sorted(k for k in params if k != "splits" and old.get(k) != params[k])
        if changed:
            raise DataRootError(
                f"{str(out_dir)!r} holds a synthetic export with other parameters ({', '.join(changed)}); "
                "choose another output folder or delete it"
            )
        params["splits"] = {**old.get("splits", {}), **params["splits"]}
    atomic_write_json(meta_path, {**params, "num_videos_per_split": num_videos})

    written: dict[str, list[Path]] = {}
    for split, split_seed, split_dir in plan:
        dataset = SyntheticActions(
            num_videos, num_classes=num_classes, frames=frames, height=height, width=width, seed=split_seed
        )
        split_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(split_dir / CLASS_LIST_FILE, "".join(f"{c}\n" for c in classes).encode())
        stem = split or "clip"
        paths = []
        for index in range(num_videos):
            path = split_dir / classes[index % num_classes] / f"{stem}_{index:06d}.mkv"
            if not path.exists():
                write_video(path, dataset[index][0], fps=fps)
            paths.append(path)
            if progress is not None:
                progress(1)
        written[split] = paths
    return written

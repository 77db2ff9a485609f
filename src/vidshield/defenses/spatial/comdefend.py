"""ComDefend (Jia, Cao, Wang, Wei; CVPR 2019): a learned compression model that purifies images.

ComCNN maps an RGB frame to a 12-channel code per pixel; binarising the code throws away the
fine detail an adversarial perturbation lives in, and RecCNN rebuilds the frame from the bits.

Architecture (as published, no batch norm):

- ComCNN: ``x - 0.5``, nine 3x3 convolutions 3->16->32->64->128->256->128->64->32->12 with
  padding 1 and ELU after each but the last; the 12-channel *linear code* is unbounded.
- RecCNN: nine 3x3 convolutions 12->32->64->128->256->128->64->32->16->3, ELU after each but
  the last, then a sigmoid.

Each half has 782,640 multiply-accumulates per pixel (0.78 M weights plus biases), so a full
purification costs 3.13 MFLOP per pixel (39 GFLOP for a 112x112 frame).

Training (:meth:`ComDefend.forward`) follows the official code: ``code = sigmoid(linear - n)``
with ``n ~ N(0, sigma^2)``, sigma = 20. The official code *subtracts* the noise; the noise is
symmetric, so the sign only matters for reproducing a given random stream, and we subtract too.
The large noise forces ComCNN to push each code far from 0, so that at test time the hard
threshold ``linear > 0`` (i.e. ``sigmoid > 0.5``) loses little. The official inference still
adds noise (sigma 1 in its ImageNet script) before thresholding, which makes the defense
random; :func:`binarize_code` offers it as ``noise_sigma``.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from vidshield.checkpoint import load_checkpoint
from vidshield.defenses.base import Defense, apply_to_marked
from vidshield.defenses.registry import register_defense
from vidshield.errors import CheckpointError
from vidshield.models.checkpoints import resolve_artifact
from vidshield.video import check_batch

COMCNN_CHANNELS = (3, 16, 32, 64, 128, 256, 128, 64, 32, 12)
RECCNN_CHANNELS = (12, 32, 64, 128, 256, 128, 64, 32, 16, 3)
CODE_CHANNELS = 12
TRAIN_NOISE_SIGMA = 20.0


def conv_stack(channels: tuple[int, ...]) -> nn.Sequential:
    """3x3 convolutions (padding 1) between consecutive ``channels``, ELU after all but the last."""
    layers: list[nn.Module] = []
    for i, (cin, cout) in enumerate(zip(channels[:-1], channels[1:])):
        layers.append(nn.Conv2d(cin, cout, kernel_size=3, padding=1))
        if i < len(channels) - 2:
            layers.append(nn.ELU())
    return nn.Sequential(*layers)


def macs_per_pixel(channels: tuple[int, ...]) -> int:
    """Multiply-accumulates per output pixel of :func:`conv_stack` (3x3 kernels)."""
    return sum(9 * cin * cout for cin, cout in zip(channels[:-1], channels[1:]))


def binarize_code(
    code: torch.Tensor, *, noise_sigma: float = 0.0, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Hard bits of a linear code: ``(code - n > 0)`` with ``n ~ N(0, noise_sigma^2)``.

    Args:
        code: linear code, any shape, any float dtype.
        noise_sigma: standard deviation of the test-time noise; 0 (default) is deterministic.
        generator: random source for the noise (on ``code``'s device); None uses torch's global one.

    Returns:
        a tensor of ``code``'s shape and dtype with values in {0, 1}.
    """
    if noise_sigma < 0:
        raise ValueError(f"noise_sigma must be >= 0, got {noise_sigma}")
    if noise_sigma > 0:
        noise = torch.randn(code.shape, generator=generator, device=code.device, dtype=code.dtype)
        code = code - noise_sigma * noise
    return (code > 0).to(code.dtype)


class _StraightThroughBits(torch.autograd.Function):
    """Forward: ``code > 0`` as {0, 1}; backward: the gradient passes through unchanged."""

    @staticmethod
    def forward(ctx, code):
        return (code > 0).to(code.dtype)

    @staticmethod
    def backward(ctx, grad):
        return grad


def straight_through_binarize(code: torch.Tensor) -> torch.Tensor:
    """Hard bits ``code > 0`` in the forward pass, identity gradient in the backward pass (BPDA).

    The identity is used rather than the sigmoid's derivative because a trained ComCNN pushes
    most codes far from 0 (that is what the sigma = 20 training noise is for), where the
    sigmoid is flat and would give vanishing gradients.
    """
    return _StraightThroughBits.apply(code)


class ComCNN(nn.Module):
    """The compression half. ``(N, 3, H, W)`` in [0, 1] -> linear code ``(N, 12, H, W)`` (unbounded)."""

    def __init__(self):
        super().__init__()
        self.layers = conv_stack(COMCNN_CHANNELS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x - 0.5)


class RecCNN(nn.Module):
    """The reconstruction half. Code ``(N, 12, H, W)`` (bits or soft codes) -> ``(N, 3, H, W)`` in [0, 1]."""

    def __init__(self):
        super().__init__()
        self.layers = conv_stack(RECCNN_CHANNELS)

    def forward(self, code: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.layers(code))


class ComDefend(nn.Module):
    """ComCNN + RecCNN on frames ``(N, 3, H, W)`` in [0, 1] (any H, W: fully convolutional).

    Example:
        >>> model = ComDefend()
        >>> x = torch.rand(2, 3, 32, 32)
        >>> bits = model.binarize(model.encode(x))        # (2, 12, 32, 32) in {0, 1}
        >>> model.decode(bits).shape
        torch.Size([2, 3, 32, 32])
    """

    def __init__(self):
        super().__init__()
        self.comcnn = ComCNN()
        self.reccnn = RecCNN()

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 3, H, W)`` in [0, 1] -> linear code ``(N, 12, H, W)``."""
        return self.comcnn(x)

    @staticmethod
    def binarize(
        code: torch.Tensor, *, noise_sigma: float = 0.0, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Linear code -> bits in {0, 1} (see :func:`binarize_code`)."""
        return binarize_code(code, noise_sigma=noise_sigma, generator=generator)

    def decode(self, bits: torch.Tensor) -> torch.Tensor:
        """Code ``(N, 12, H, W)`` -> frames ``(N, 3, H, W)`` in [0, 1]."""
        return self.reccnn(bits)

    def purify(
        self, x: torch.Tensor, *, noise_sigma: float = 0.0, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Inference: encode, binarise, decode. ``(N, 3, H, W)`` -> same shape, in [0, 1]."""
        return self.decode(self.binarize(self.encode(x), noise_sigma=noise_sigma, generator=generator))

    def forward(
        self,
        x: torch.Tensor,
        *,
        train_noise_sigma: float = TRAIN_NOISE_SIGMA,
        generator: torch.Generator | None = None,
    ) -> dict[str, torch.Tensor]:
        """Training pass: ``code = sigmoid(linear - N(0, sigma^2))``, ``rec = decode(code)``.

        Returns:
            ``{"linear": (N, 12, H, W), "code": (N, 12, H, W) in (0, 1), "rec": (N, 3, H, W) in [0, 1]}``.
        """
        linear = self.encode(x)
        noise = torch.randn(linear.shape, generator=generator, device=linear.device, dtype=linear.dtype)
        code = torch.sigmoid(linear - train_noise_sigma * noise)
        return {"linear": linear, "code": code, "rec": self.decode(code)}


def comdefend_loss(x: torch.Tensor, out: dict[str, torch.Tensor], *, code_weight: float = 1e-4) -> torch.Tensor:
    """The ComDefend objective: ``mean((rec - x)^2) + code_weight * mean(code^2)`` (a scalar)."""
    return (out["rec"].float() - x).square().mean() + code_weight * out["code"].float().square().mean()


# --------------------------------------------------------------------------------------------
# Purifying frames and videos
# --------------------------------------------------------------------------------------------

#: The library's default weights: the synthetic reproduction's ComDefend (``zoo/comdefend``).
DEFAULT_WEIGHTS = "comdefend"
#: The weights for real footage (``zoo/comdefend-real``: fine-tuned on native-size real frames):
#: what ``vidshield defend --method spatial`` applies to a user's file and what the
#: UT-Interaction models' checkpoints name (:func:`model_comdefend`).
REAL_FOOTAGE_WEIGHTS = "comdefend-real"
ARCHITECTURE = "comdefend"


def model_comdefend(model, default: str = DEFAULT_WEIGHTS) -> str:
    """The ComDefend weights a classifier's checkpoint names for the spatial defense that protects
    it (``"comdefend": NAME`` in its JSON; the UT-Interaction models name
    :data:`REAL_FOOTAGE_WEIGHTS`), else ``default``."""
    name = (getattr(model, "metadata", None) or {}).get("comdefend")
    return name if isinstance(name, str) and name else default


def frames_to_tiles(frames: torch.Tensor, tile: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Cut frames into non-overlapping ``tile`` x ``tile`` patches.

    The bottom/right borders are padded by replicating the last row/column up to a multiple of
    ``tile`` (the padding is cropped away again by :func:`tiles_to_frames`).

    Shape:
        ``(N, C, H, W)`` -> ``(N * nh * nw, C, tile, tile)`` with ``nh = ceil(H / tile)``,
        and the grid ``(nh, nw)``.
    """
    n, c, h, w = frames.shape
    nh, nw = -(-h // tile), -(-w // tile)
    padded = F.pad(frames, (0, nw * tile - w, 0, nh * tile - h), mode="replicate")
    tiles = padded.reshape(n, c, nh, tile, nw, tile).permute(0, 2, 4, 1, 3, 5)
    return tiles.reshape(n * nh * nw, c, tile, tile), (nh, nw)


def tiles_to_frames(tiles: torch.Tensor, grid: tuple[int, int], size: tuple[int, int]) -> torch.Tensor:
    """Inverse of :func:`frames_to_tiles`: ``(N * nh * nw, C, t, t)`` -> ``(N, C, H, W)``."""
    (nh, nw), (h, w) = grid, size
    _, c, tile, _ = tiles.shape
    frames = tiles.reshape(-1, nh, nw, c, tile, tile).permute(0, 3, 1, 4, 2, 5)
    return frames.reshape(-1, c, nh * tile, nw * tile)[:, :, :h, :w]


def _binarize(code: torch.Tensor, *, noise_sigma: float, generator, straight_through: bool) -> torch.Tensor:
    if not straight_through:
        return binarize_code(code, noise_sigma=noise_sigma, generator=generator)
    if noise_sigma > 0:  # the same noise draw as binarize_code, so a seeded surrogate matches
        code = code - noise_sigma * torch.randn(code.shape, generator=generator, device=code.device, dtype=code.dtype)
    return straight_through_binarize(code)


def _purify_whole(model, frames, *, noise_sigma, generator, straight_through) -> torch.Tensor:
    bits = _binarize(
        model.encode(frames), noise_sigma=noise_sigma, generator=generator, straight_through=straight_through
    )
    return model.decode(bits)


def purify_frames(
    model: ComDefend,
    frames: torch.Tensor,
    *,
    tile: int | None = None,
    noise_sigma: float = 0.0,
    generator: torch.Generator | None = None,
    straight_through: bool = False,
) -> torch.Tensor:
    """ComDefend purification of a batch of frames, whole (``tile=None``) or in square tiles.

    Args:
        model: a trained :class:`ComDefend`.
        frames: ``(N, 3, H, W)`` in [0, 1], any H, W.
        tile: None for one fully convolutional pass over each frame; an int (the official code
            uses 32) to purify independent ``tile`` x ``tile`` patches. Each patch sees zero
            padding at its own borders, so tiling changes the result near tile edges.
        noise_sigma: test-time noise added to the code before thresholding (0: deterministic).
        generator: random source for that noise.
        straight_through: binarise with :func:`straight_through_binarize` so gradients flow (BPDA).

    Returns:
        ``(N, 3, H, W)`` in [0, 1] (bfloat16 under a bfloat16 autocast, else ``frames``' dtype).
    """
    if tile is None:
        return _purify_whole(
            model, frames, noise_sigma=noise_sigma, generator=generator, straight_through=straight_through
        )
    tiles, grid = frames_to_tiles(frames, tile)
    out = _purify_whole(model, tiles, noise_sigma=noise_sigma, generator=generator, straight_through=straight_through)
    return tiles_to_frames(out, grid, frames.shape[-2:])


#: Pixels of context one output pixel depends on, each side: one per 3x3 convolution.
RECEPTIVE_RADIUS = len(COMCNN_CHANNELS) - 1 + len(RECCNN_CHANNELS) - 1
#: Peak bytes of float32 activations per pixel of one ComDefend pass (measured: ~2.6 KB; the widest
#: convolution's input, output and the ELU's copy), used to size passes by a memory budget.
ACTIVATION_BYTES_PER_PIXEL = 3 * 1024


def purify_in_tiles(model: ComDefend, frames: torch.Tensor, *, max_pixels: int, **options) -> torch.Tensor:
    """:func:`purify_frames` (whole frames) of frames too large for one pass, in overlapping tiles.

    Each tile is purified with :data:`RECEPTIVE_RADIUS` pixels of context on every side (the frame
    edge where there is none) and only its core is kept, so every output pixel sees what it sees in
    a whole-frame pass: the same result up to float rounding (different convolution sizes may sum
    in another order; a code bit at exactly 0 could flip). Unlike ``tile=`` (the official code's
    independent tiles), nothing changes near tile edges.

    Args:
        frames: ``(N, 3, H, W)`` in [0, 1].
        max_pixels: largest tile, context included, in pixels (>= ``(2 * RECEPTIVE_RADIUS + 16)^2``).
        options: as :func:`purify_frames` (``noise_sigma`` > 0 draws different noise per tile).

    Returns:
        ``(N, 3, H, W)``.
    """
    halo = RECEPTIVE_RADIUS
    side = int(max_pixels**0.5) - 2 * halo
    if side < 16:
        raise ValueError(f"max_pixels={max_pixels} leaves tiles under 16x16 besides their context")
    h, w = frames.shape[-2:]
    out = None
    for y0 in range(0, h, side):
        for x0 in range(0, w, side):
            ys, xs = max(0, y0 - halo), max(0, x0 - halo)
            ye, xe = min(h, y0 + side + halo), min(w, x0 + side + halo)
            part = purify_frames(model, frames[..., ys:ye, xs:xe].contiguous(), **options)
            if out is None:
                out = torch.empty(frames.shape, dtype=part.dtype, device=part.device)
            out[..., y0 : y0 + side, x0 : x0 + side] = part[..., y0 - ys : y0 - ys + side, x0 - xs : x0 - xs + side]
    return out


def load_comdefend(weights: str | Path | None = None, *, device: str | torch.device = "cpu") -> tuple[ComDefend, dict]:
    """Load a ComDefend checkpoint (``None``: the shipped default) -> ``(model in eval mode, metadata)``.

    Raises:
        CheckpointError: missing files, or a checkpoint of another architecture or shape.
    """
    hint = (
        "Train them with `vidshield train-comdefend --dataset ut-interaction --root DATA --out runs/comdefend` "
        "and pass that path, or pass model=ComDefend()"
    )
    path = resolve_artifact(DEFAULT_WEIGHTS if weights is None else weights, kind="ComDefend weights", hint=hint)
    state, metadata = load_checkpoint(path, device=device)
    if metadata.get("architecture") != ARCHITECTURE:
        raise CheckpointError(
            f"{path} is not a ComDefend checkpoint (architecture {metadata.get('architecture')!r}, expected {ARCHITECTURE!r})"
        )
    model = ComDefend().to(device)
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise CheckpointError(f"{path} does not match the ComDefend architecture: {e}") from e
    return model.eval(), metadata


def cpu_supports_bf16() -> bool:
    """True when oneDNN has fast bfloat16 kernels on this CPU (AVX512-BF16 / AMX)."""
    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())


_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


@register_defense("spatial")
class SpatialDefense(Defense):
    """The paper's spatial defense: ComDefend applied to every frame of a video.

    Frames of the whole batch are flattened to ``(N*T, 3, H, W)`` and purified ``batch_frames``
    at a time: encode, binarise (``code > 0``, optionally after test-time noise), decode.

    Whole frames vs tiles: the default (``tile=None``) is one fully convolutional pass per
    frame. The official code cuts large images into 32x32 tiles (``tile=32``). Tiling is not
    faster here (float32 on this 2-core CPU: 1.9 vs 2.4 frames/s at 112x112, which is padded to
    128x128) and it is less faithful: every tile sees zero padding at its own borders while the
    receptive field is 37x37, so no output pixel of a 32x32 tile is free of it; tiled and
    whole-frame outputs are about 30 dB PSNR apart (``benchmarks/bench_spatial.py``).

    Precision: CUDA runs in bfloat16 autocast with channels-last tensors. On CPU, ``"auto"``
    uses bfloat16 autocast when oneDNN has native bf16 kernels (AVX512-BF16 / AMX): about 2.5x
    the float32 speed, and the purified frames stay within 0.01 dB PSNR of float32 (56 dB apart;
    measured with a short CPU-trained checkpoint); otherwise float32. Channels-last is used on
    every device (float32 on CPU: ~76% of the matmul rate vs ~60% for plain NCHW).

    Args:
        weights: checkpoint name in the package zoo or a path (``x``, ``x.safetensors``);
            None loads the shipped default ``"comdefend"`` (a :class:`CheckpointError` says how to
            train one when it is missing). Give either ``weights`` or ``model``.
        model: an already built :class:`ComDefend` to use as is (its parameters are converted to
            the channels-last layout; values are unchanged).
        tile: None (whole frames) or the side of the square tiles (the official code: 32).
        test_noise: sigma of the noise added to the code before thresholding (the official
            inference adds sigma 1); 0 (default) makes the defense deterministic.
        batch_frames: at most this many frames per forward pass (memory vs speed).
        memory_mb: activation memory of one pass: fewer frames per pass when ``batch_frames`` of
            them would need more (:meth:`frames_per_pass`), and a frame that alone needs more is
            purified in overlapping tiles with full context (:func:`purify_in_tiles`: the
            whole-frame result up to float rounding). None: no limit.
        dtype: "auto", "float32" or "bfloat16": the precision the convolutions run in.

    Shape:
        ``forward(video, *, polluted=None, generator=None)``: ``float32 (N, T, 3, H, W)`` in
        [0, 1] -> same shape, in [0, 1], on ``video``'s device; every frame is purified, or only
        the frames marked in ``polluted`` (bool ``(N, T)``). ``generator`` seeds the test-time
        noise. The model runs on the device it was moved to (``defense.to("cuda")``).
    """

    differentiable = False
    frame_wise = True

    def __init__(
        self,
        *,
        weights: str | Path | None = None,
        model: ComDefend | None = None,
        tile: int | None = None,
        test_noise: float = 0.0,
        batch_frames: int = 64,
        memory_mb: int | None = 1024,
        dtype: str = "auto",
    ):
        super().__init__()
        if model is not None and weights is not None:
            raise ValueError("give either weights or model, not both")
        if tile is not None and (not isinstance(tile, int) or tile < 4):
            raise ValueError(f"tile must be None or an int >= 4, got {tile!r}")
        if test_noise < 0:
            raise ValueError(f"test_noise must be >= 0, got {test_noise}")
        if batch_frames < 1:
            raise ValueError(f"batch_frames must be >= 1, got {batch_frames}")
        if memory_mb is not None and (isinstance(memory_mb, bool) or not isinstance(memory_mb, int) or memory_mb < 64):
            raise ValueError(f"memory_mb must be None or an int >= 64, got {memory_mb!r}")
        if dtype != "auto" and dtype not in _DTYPES:
            raise ValueError(f"dtype must be 'auto', 'float32' or 'bfloat16', got {dtype!r}")
        #: the weights reference the defense was built from (None: a model passed in)
        self.weights = None if model is not None else str(DEFAULT_WEIGHTS if weights is None else weights)
        if model is None:
            model, self.metadata = load_comdefend(weights)
        else:
            if not isinstance(model, ComDefend):
                raise ValueError(f"model must be a ComDefend, got {type(model).__name__}")
            self.metadata = {}
        self.model = model.eval().to(memory_format=torch.channels_last)
        self.tile = tile
        self.test_noise = float(test_noise)
        self.batch_frames = int(batch_frames)
        self.memory_mb = memory_mb
        self.dtype = dtype

    def extra_repr(self) -> str:
        return (
            f"tile={self.tile}, test_noise={self.test_noise}, batch_frames={self.batch_frames}, "
            f"memory_mb={self.memory_mb}, dtype={self.dtype!r}"
        )

    def _max_pixels(self) -> int | None:
        """Pixels of one pass within ``memory_mb`` (None: no limit)."""
        return None if self.memory_mb is None else (self.memory_mb << 20) // ACTIVATION_BYTES_PER_PIXEL

    def frames_per_pass(self, height: int, width: int) -> int:
        """Frames of ``height x width`` purified per forward pass: ``batch_frames``, fewer when the
        memory budget says so, 1 (in tiles) when one frame exceeds it."""
        limit = self._max_pixels()
        if limit is None or self.tile is not None:
            return self.batch_frames
        return max(1, min(self.batch_frames, limit // (height * width)))

    def estimate_seconds(self, frames: int, height: int, width: int) -> float:
        """Seconds to purify ``frames`` frames of ``height x width`` on the model's device, from a
        short timed pass on a 96x96 patch (about 0.1 s on a CPU) scaled by the pixel count."""
        patch = torch.rand(1, 1, 3, 96, 96, generator=torch.Generator().manual_seed(0))
        best = float("inf")
        for _ in range(2):  # the first call includes one-off set-up
            start = time.perf_counter()
            self._purify(patch, generator=None, straight_through=False)
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            best = min(best, time.perf_counter() - start)
        return best * frames * height * width / (96 * 96)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def compute_dtype(self) -> torch.dtype:
        """The precision the convolutions run in on the model's current device."""
        if self.dtype != "auto":
            return _DTYPES[self.dtype]
        if self.device.type == "cuda" or (self.device.type == "cpu" and cpu_supports_bf16()):
            return torch.bfloat16
        return torch.float32

    def _purify(self, video: torch.Tensor, *, generator, straight_through: bool) -> torch.Tensor:
        n, t, c, h, w = video.shape
        device, dtype = self.device, self.compute_dtype()
        chunks = []
        limit = self._max_pixels()
        tiled = self.tile is None and limit is not None and h * w > limit
        for chunk in video.reshape(n * t, c, h, w).split(self.frames_per_pass(h, w)):
            x = chunk.to(device).contiguous(memory_format=torch.channels_last)
            options = dict(noise_sigma=self.test_noise, generator=generator, straight_through=straight_through)
            with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
                if tiled:
                    out = purify_in_tiles(self.model, x, max_pixels=limit, **options)
                else:
                    out = purify_frames(self.model, x, tile=self.tile, **options)
            chunks.append(out.to(video.device, torch.float32))
        return torch.cat(chunks).reshape(n, t, c, h, w).contiguous()

    def forward(
        self, video: torch.Tensor, *, polluted: torch.Tensor | None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Purify every (marked) frame. ``generator`` seeds the test-time noise (on the model's device)."""
        check_batch(video)
        with torch.no_grad():
            return apply_to_marked(
                video, polluted, lambda v: self._purify(v, generator=generator, straight_through=False)
            )

    def surrogate(
        self, video: torch.Tensor, *, polluted: torch.Tensor | None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Differentiable stand-in for BPDA: the same computation with a straight-through
        binarisation (hard bits forward, identity gradient backward). Without test noise its
        value equals :meth:`forward`'s."""
        check_batch(video, check_range=False)
        return apply_to_marked(video, polluted, lambda v: self._purify(v, generator=generator, straight_through=True))

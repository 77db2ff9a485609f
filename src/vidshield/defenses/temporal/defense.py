"""The temporal defense: rebuild polluted frames from clean neighbours (the paper's temporal
defense; the transform and quantiser are H.264's 4x4 integer DCT and QP scale, whose step doubles
every 6 QP: :mod:`~vidshield.defenses.temporal.intdct`, :mod:`~vidshield.defenses.temporal.quant`).

For each frame marked polluted:

1. references = the nearest frames *not* marked polluted before and after it (one side only
   when the other has none);
2. block matching (:func:`motion.estimate_motion`) of the polluted frame against each
   reference; per block the reference with the lower MAD wins (ties: the earlier frame);
3. prediction = the motion-compensated blocks (exact copies of reference pixels);
4. residual = ``round(255 * (polluted - prediction))`` per RGB channel (an RGB 4:4:4 residual,
   as H.264's High 4:4:4 profile can code), coded with the integer DCT and quantised at ``qp``
   (inter rounding offset): :func:`quant.code_residual`;
5. reconstruction = ``clip(prediction + decoded_residual / 255, 0, 1)``.

The coarse quantisation removes the low-amplitude perturbation; the motion compensation is what
keeps the frame's content. Frames not marked are returned bit-identical (copied, never
round-tripped through 8 bits). A video in which *every* frame is marked cannot be rebuilt and
raises ``ValueError`` (a detector never marks every frame: Eq. 1 cannot mark the first and last).

Streams: :func:`defend_stream` takes an iterator of frames and flags and yields defended frames
in order, holding only the current run of polluted frames (plus the last clean one) in memory.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator

import numpy as np
import torch

from vidshield.defenses.base import Defense
from vidshield.defenses.registry import register_defense
from vidshield.defenses.temporal.motion import (
    _CHANNELS,
    SEARCH_METHODS,
    _float32_frames,
    _match_numba,
    _numba_kernels,
    estimate_motion,
    motion_compensate,
)
from vidshield.defenses.temporal.quant import MAX_QP, code_residual, quant_tables_4x4
from vidshield.video import check_batch, check_frame_mask, check_video, frames_to_tensor, tensor_to_frames, to_float

__all__ = ["TemporalDefense", "rebuild_frames", "rebuild_frames_uint8", "defend_stream", "key_frame_mask", "DEFAULT_QP"]

DEFAULT_QP = 36
_SURROGATES = ("identity", "prediction")


def key_frame_mask(t: int, *, every: int, n: int | None = None) -> torch.Tensor:
    """ "Every frame but the key frames": key frames at 0, every, 2 * every, ... are clean.

    Returns:
        bool ``(T,)``, or ``(n, T)`` when ``n`` is given; True = rebuild this frame.
    """
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise ValueError(f"every must be an int >= 1, got {every!r}")
    if not isinstance(t, int) or t < 1:
        raise ValueError(f"t must be an int >= 1, got {t!r}")
    mask = torch.arange(t) % every != 0
    return mask if n is None else mask.unsqueeze(0).expand(n, t).clone()


def _check_params(block, search, method, qp, transform, channels) -> None:
    for name, v, lo in (("block", block, 1), ("search", search, 0)):
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise ValueError(f"{name} must be an int >= {lo}, got {v!r}")
    if method not in SEARCH_METHODS:
        raise ValueError(f"method must be one of {SEARCH_METHODS}, got {method!r}")
    if isinstance(qp, bool) or not isinstance(qp, int) or not 0 <= qp <= MAX_QP:
        raise ValueError(f"qp must be an int in [0, {MAX_QP}], got {qp!r}")
    if transform not in (4, 8):
        raise ValueError(f"transform must be 4 or 8, got {transform!r}")
    if channels not in _CHANNELS:
        raise ValueError(f"channels must be one of {_CHANNELS}, got {channels!r}")


def _predict(cur, prev, nxt, has_prev, has_next, *, block, search, method, channels, backend):
    """Bidirectional block prediction -> (prediction (P, C, H, W), use_next bool (P, Hb, Wb))."""
    sides = []
    for ref, has in ((prev, has_prev), (nxt, has_next)):
        if ref is None:
            sides.append(None)
            continue
        vec, mad = estimate_motion(
            cur, ref, block=block, search=search, method=method, channels=channels, backend=backend
        )
        mad = torch.where(has.view(-1, 1, 1), mad, torch.full_like(mad, float("inf")))
        sides.append((motion_compensate(ref, vec, block=block), mad))
    if sides[0] is None:
        return sides[1][0], None
    if sides[1] is None:
        return sides[0][0], None
    (pred_p, mad_p), (pred_n, mad_n) = sides
    use_next = mad_n < mad_p
    h, w = cur.shape[-2:]
    pixel_mask = use_next.repeat_interleave(block, 1).repeat_interleave(block, 2)[:, :h, :w].unsqueeze(1)
    return torch.where(pixel_mask, pred_n, pred_p), use_next


def rebuild_frames(
    cur: torch.Tensor,
    prev: torch.Tensor | None,
    nxt: torch.Tensor | None,
    *,
    has_prev: torch.Tensor | None = None,
    has_next: torch.Tensor | None = None,
    block: int = 8,
    search: int = 7,
    method: str = "full",
    qp: int = DEFAULT_QP,
    transform: int = 4,
    channels: str = "luma",
    residual: bool = True,
    backend: str = "auto",
) -> torch.Tensor:
    """Rebuild frames from their references (the algorithm; :class:`TemporalDefense` wraps it).

    Args:
        cur: polluted frames float ``(P, 3, H, W)`` in [0, 1].
        prev, nxt: reference frames before / after, same shape, or None for none on that side.
        has_prev, has_next: bool ``(P,)``: which rows of ``prev`` / ``nxt`` are real references
            (default: all, when the tensor is given). Every frame needs at least one.
        block, search, method, channels: block matching (:func:`motion.block_match`).
        qp: residual quantisation parameter (0..51): the defense's strength.
        transform: 4 (4x4 integer DCT) or 8 (8x8).
        residual: False drops the residual (motion compensation alone).
        backend: block-matching backend.

    Returns:
        float32 ``(P, 3, H, W)`` in [0, 1].
    """
    _check_params(block, search, method, qp, transform, channels)
    p = cur.shape[0]
    for name, ref in (("prev", prev), ("nxt", nxt)):
        if ref is not None and ref.shape != cur.shape:
            raise ValueError(f"{name} must have the shape of cur {tuple(cur.shape)}, got {tuple(ref.shape)}")
    ones = torch.ones(p, dtype=torch.bool, device=cur.device)
    has_prev = (ones if has_prev is None else has_prev.to(cur.device)) if prev is not None else ~ones
    has_next = (ones if has_next is None else has_next.to(cur.device)) if nxt is not None else ~ones
    if not bool((has_prev | has_next).all()):
        raise ValueError("every frame to rebuild needs a reference before or after it")
    kernels = _numba_kernels() if backend != "torch" else None
    if kernels is not None and cur.device.type == "cpu":
        return _rebuild_numba(
            kernels,
            cur,
            prev,
            nxt,
            has_prev,
            has_next,
            block=block,
            search=search,
            method=method,
            qp=qp,
            transform=transform,
            channels=channels,
            residual=residual,
        )
    pred, _ = _predict(
        cur,
        prev,
        nxt,
        has_prev,
        has_next,
        block=block,
        search=search,
        method=method,
        channels=channels,
        backend=backend,
    )
    return _add_residual(cur, pred, qp, transform) if residual else pred.to(torch.float32)


def _add_residual(cur: torch.Tensor, pred: torch.Tensor, qp: int, transform: int) -> torch.Tensor:
    """clip(pred + decoded residual / 255, 0, 1) with the torch transform and quantiser."""
    res = torch.round((cur - pred) * 255.0).clamp_(-255, 255).to(torch.int32)
    decoded = code_residual(res, qp, size=transform).to(torch.float32)
    return (pred + decoded / 255.0).clamp_(0.0, 1.0).to(torch.float32)


class _NumbaRebuilder:
    """The numba path of :func:`rebuild_frames`, one frame at a time: the frame's planes,
    prediction and output stay in the cache, the workspace is reused, and the planes of the last
    few reference frames are kept (a run of polluted frames shares its two references).
    Bit-identical to the torch path. Frames are float32 ``(1, 3, H, W)`` in [0, 1]."""

    def __init__(self, kernels, *, block, search, method, qp, transform, channels, residual) -> None:
        self.kernels, self.block, self.search = kernels, block, search
        self.method = "full" if search == 0 else method
        self.qp, self.transform, self.luma, self.residual = qp, transform, channels == "luma", residual
        self.tables = quant_tables_4x4(qp)
        self.pred: np.ndarray | None = None
        self.ref_planes: dict = {}

    def _to_planes(self, frame: np.ndarray, extra: int) -> np.ndarray:
        return self.kernels.to_planes(frame, self.luma, self.block, extra)

    def _compensate(self, ref_a, ref_b, vec_a, vec_b, pick_b, out) -> None:
        self.kernels.compensate(ref_a, ref_b, vec_a, vec_b, pick_b, self.block, out)

    def _residual(self, cur: np.ndarray, out: np.ndarray) -> None:
        if self.transform == 4:
            self.kernels.rebuild_4x4(cur, self.pred, *self.tables, self.qp // 6, out)
        else:
            out[:] = _add_residual(torch.from_numpy(cur), torch.from_numpy(self.pred), self.qp, self.transform).numpy()

    def _planes_of(self, frame: np.ndarray, key) -> np.ndarray:
        if key is None or key not in self.ref_planes:
            planes = self._to_planes(frame, self.search)
            if key is None:
                return planes
            if len(self.ref_planes) >= 4:
                self.ref_planes.pop(next(iter(self.ref_planes)))
            self.ref_planes[key] = planes
        return self.ref_planes[key]

    def rebuild(self, cur: np.ndarray, refs: list, out: np.ndarray) -> None:
        """cur: one frame (batch of 1); refs: one or two ``(frame, cache key or None)`` (earlier
        side first); writes the rebuilt frame into ``out`` (cur's shape)."""
        cur_planes = self._to_planes(cur, 0)  # once for both sides
        found = []
        for frame, key in refs:
            vec, sad = _match_numba(
                self.kernels, cur_planes, self._planes_of(frame, key), self.block, self.search, self.method
            )
            found.append((frame, vec, sad))
        (ref_a, vec_a, sad_a), (ref_b, vec_b, sad_b) = found if len(found) == 2 else found * 2
        pick_b = sad_b < sad_a  # per block the lower cost; ties (and a single side) take the earlier frame
        if not self.residual:
            self._compensate(ref_a, ref_b, vec_a, vec_b, pick_b, out)
            return
        if self.pred is None or self.pred.shape != cur.shape:
            self.pred = np.empty_like(cur)
        self._compensate(ref_a, ref_b, vec_a, vec_b, pick_b, self.pred)
        self._residual(cur, out)


class _NumbaRebuilderU8(_NumbaRebuilder):
    """:class:`_NumbaRebuilder` on decoded frames, uint8 ``(1, H, W, 3)`` RGB, never converted to
    float: equal to the float path's output rounded to 8 bits (see ``_numba_kernels``)."""

    def __init__(self, kernels, **options) -> None:
        super().__init__(kernels, **options)
        self.lut = to_float(torch.arange(256, dtype=torch.uint8)).numpy()

    def _to_planes(self, frame: np.ndarray, extra: int) -> np.ndarray:
        return self.kernels.to_planes_u8(frame, self.luma, self.block, extra, self.lut)

    def _compensate(self, ref_a, ref_b, vec_a, vec_b, pick_b, out) -> None:
        self.kernels.compensate_u8(ref_a, ref_b, vec_a, vec_b, pick_b, self.block, out)

    def _residual(self, cur: np.ndarray, out: np.ndarray) -> None:
        if self.transform == 4:
            self.kernels.rebuild_4x4_u8(cur, self.pred, *self.tables, self.qp // 6, out)
        else:
            cur_f, pred_f = frames_to_tensor(cur), frames_to_tensor(self.pred)
            out[:] = tensor_to_frames(_add_residual(cur_f, pred_f, self.qp, self.transform))


def rebuild_frames_uint8(cur: np.ndarray, prev: np.ndarray | None, nxt: np.ndarray | None, **options) -> np.ndarray:
    """:func:`rebuild_frames` on decoded frames, without a float copy: the same frames as the float
    path rounded to 8 bits (``vidshield.video.to_uint8``), bit for bit.

    Args:
        cur: polluted frames uint8 ``(P, H, W, 3)`` RGB.
        prev, nxt: one reference frame each, uint8 ``(H, W, 3)``, shared by every row of ``cur``
            (a run of polluted frames between two clean ones), or None for none on that side.
        options: as :func:`rebuild_frames` (``block``, ``search``, ``method``, ``qp``, ...).

    Returns:
        uint8 ``(P, H, W, 3)``.
    """
    refs = [r for r in (prev, nxt) if r is not None]
    for name, x in (("cur", cur), *(("reference", r) for r in refs)):
        if not isinstance(x, np.ndarray) or x.dtype != np.uint8 or x.shape[-1] != 3:
            raise ValueError(f"{name} must be uint8 RGB frames (..., H, W, 3), got {getattr(x, 'dtype', type(x))}")
    if cur.ndim != 4 or any(r.shape != cur.shape[1:] for r in refs):
        raise ValueError(f"cur must be (P, H, W, 3) and each reference (H, W, 3) of its size, got {cur.shape}")
    if not refs:
        raise ValueError("every frame to rebuild needs a reference before or after it")
    options = dict(options)
    backend = options.pop("backend", "auto")
    _check_params(
        options.get("block", 8),
        options.get("search", 7),
        options.get("method", "full"),
        options.get("qp", DEFAULT_QP),
        options.get("transform", 4),
        options.get("channels", "luma"),
    )
    kernels = _numba_kernels() if backend != "torch" else None
    if kernels is None:  # the float path, one frame at a time
        out = np.empty_like(cur)
        ref_f = [None if r is None else frames_to_tensor(r[None]) for r in (prev, nxt)]
        for i in range(cur.shape[0]):
            out[i] = tensor_to_frames(
                rebuild_frames(frames_to_tensor(cur[i : i + 1]), *ref_f, backend=backend, **options)
            )[0]
        return out
    defaults = dict(block=8, search=7, method="full", qp=DEFAULT_QP, transform=4, channels="luma", residual=True)
    worker = _NumbaRebuilderU8(kernels, **(defaults | options))
    refs = [(np.ascontiguousarray(r)[None], side) for r, side in ((prev, "prev"), (nxt, "next")) if r is not None]
    out = np.empty_like(cur)
    for i in range(cur.shape[0]):
        worker.rebuild(np.ascontiguousarray(cur[i : i + 1]), refs, out[i : i + 1])
    return out


def _rebuild_numba(kernels, cur, prev, nxt, has_prev, has_next, **options) -> torch.Tensor:
    """:func:`rebuild_frames` on CPU tensors with the numba kernels -> float32 (P, 3, H, W)."""
    cur_np = _float32_frames(cur)
    sides = []
    for side, ref, has in (("prev", prev, has_prev), ("next", nxt, has_next)):
        if ref is None:
            continue
        # one frame broadcast over the batch (``expand``, as defend_stream passes it): convert it
        # once and keep its planes, instead of materialising a copy per polluted frame
        shared = ref.shape[0] > 1 and ref.stride(0) == 0
        sides.append((_float32_frames(ref[:1] if shared else ref), has.cpu().tolist(), side if shared else None))
    out = np.empty_like(cur_np)
    worker = _NumbaRebuilder(kernels, **options)
    for i in range(cur_np.shape[0]):
        refs = [(frames[:1] if key else frames[i : i + 1], key) for frames, has, key in sides if has[i]]
        worker.rebuild(cur_np[i : i + 1], refs, out[i : i + 1])
    return torch.from_numpy(out)


def _neighbours(mask_row: torch.Tensor) -> tuple[list[int], list[int]]:
    """For one video's mask (T,): index of the nearest clean frame before / after (-1: none)."""
    t = mask_row.numel()
    clean = (~mask_row).tolist()
    before, after = [-1] * t, [-1] * t
    last = -1
    for i in range(t):
        before[i] = last
        if clean[i]:
            last = i
    last = -1
    for i in range(t - 1, -1, -1):
        after[i] = last
        if clean[i]:
            last = i
    return before, after


@register_defense("temporal", qp=DEFAULT_QP, block=8, search=7)
class TemporalDefense(Defense):
    """Rebuild polluted frames by bidirectional block motion compensation + a quantised
    integer-DCT residual (see the module docstring).

    Args:
        block: block size (8; 16 available).
        search: search range p (7).
        method: block-matching search, one of :data:`motion.SEARCH_METHODS` ("full").
        qp: residual QP 0..51 (36): the strength. The residual step doubles every 6 QP.
        transform: 4 or 8, the integer-DCT size.
        channels: "luma" (BT.601, default) or "rgb" matching cost.
        bidirectional: use the clean frames on both sides (True) or only the previous one
            (falling back to the next one when there is no previous clean frame).
        residual: code the residual (True) or keep the motion-compensated prediction only.
        key_every: the mask used when ``forward`` gets none: every frame but the key frames
            0, k, 2k, ... (None: a mask is required).
        surrogate: BPDA surrogate, "identity" or "prediction" (the motion-compensated
            prediction, differentiable with respect to the reference frames).
        chunk: polluted frames processed at once (memory bound).
        backend: block-matching backend ("auto": numba on CPU when installed, torch otherwise).
        random_grid: beyond the paper (issue 13, a hardening switch, off by default): shift the
            block and transform grid of each video by a random ``(dy, dx)`` in ``[0, block)``: the
            frame from row ``dy`` and column ``dx`` on is rebuilt on a grid that starts there, the
            strips above and left of it (fewer than ``block`` pixels) on the grid at 0 (twice the
            work when the offset is not 0; padding the frame instead leaves its edge blocks
            unmatched, since the padding does not move with the content).
        qp_range: beyond the paper (the other half of the randomised defense): ``(lo, hi)``,
            each video's QP drawn uniformly from ``lo..hi`` (inclusive) instead of ``qp``.

    Shape:
        ``forward(video (N, T, 3, H, W) float [0, 1], *, polluted bool (N, T) = None,
        generator=None) -> same``. ``polluted`` is required unless ``key_every`` is set (a
        :class:`ValueError` otherwise); a video with every frame marked is refused. Without
        ``random_grid`` and ``qp_range`` the defense is deterministic and ignores ``generator``;
        with them each video draws its offset and QP from ``generator`` (torch's global generator
        when None). Unmarked frames are returned bit-identical either way.
    """

    differentiable = False

    def __init__(
        self,
        *,
        block: int = 8,
        search: int = 7,
        method: str = "full",
        qp: int = DEFAULT_QP,
        transform: int = 4,
        channels: str = "luma",
        bidirectional: bool = True,
        residual: bool = True,
        key_every: int | None = None,
        surrogate: str = "identity",
        chunk: int = 32,
        backend: str = "auto",
        random_grid: bool = False,
        qp_range: tuple[int, int] | None = None,
    ) -> None:
        super().__init__()
        _check_params(block, search, method, qp, transform, channels)
        if qp_range is not None:
            if len(qp_range) != 2 or qp_range[0] > qp_range[1]:
                raise ValueError(f"qp_range must be (lo, hi) with lo <= hi, got {qp_range!r}")
            for v in qp_range:
                _check_params(block, search, method, v, transform, channels)
            qp_range = tuple(qp_range)
        if surrogate not in _SURROGATES:
            raise ValueError(f"surrogate must be one of {_SURROGATES}, got {surrogate!r}")
        if key_every is not None and (isinstance(key_every, bool) or not isinstance(key_every, int) or key_every < 1):
            raise ValueError(f"key_every must be None or an int >= 1, got {key_every!r}")
        if not isinstance(chunk, int) or chunk < 1:
            raise ValueError(f"chunk must be an int >= 1, got {chunk!r}")
        self.block, self.search, self.method, self.qp = block, search, method, qp
        self.transform, self.channels, self.bidirectional, self.residual = transform, channels, bidirectional, residual
        self.key_every, self.surrogate_kind, self.chunk, self.backend = key_every, surrogate, chunk, backend
        self.random_grid, self.qp_range = bool(random_grid), qp_range

    @property
    def randomised(self) -> bool:
        """True when each call draws a grid offset or a QP (the attacker then needs EOT)."""
        return self.random_grid or self.qp_range is not None

    def extra_repr(self) -> str:
        extra = ", random_grid=True" if self.random_grid else ""
        extra += f", qp_range={self.qp_range}" if self.qp_range is not None else ""
        return (
            f"block={self.block}, search={self.search}, method={self.method!r}, qp={self.qp}, "
            f"transform={self.transform}, channels={self.channels!r}, bidirectional={self.bidirectional}, "
            f"residual={self.residual}{extra}"
        )

    def _options(self, qp: int | None = None) -> dict:
        return dict(
            block=self.block,
            search=self.search,
            method=self.method,
            qp=self.qp if qp is None else qp,
            transform=self.transform,
            channels=self.channels,
            residual=self.residual,
            backend=self.backend,
        )

    def _mask(self, video: torch.Tensor, polluted: torch.Tensor | None) -> torch.Tensor:
        n, t = video.shape[:2]
        if polluted is None:
            if self.key_every is None:
                raise ValueError("TemporalDefense needs a polluted mask bool (N, T) (or construct it with key_every=k)")
            polluted = key_frame_mask(t, every=self.key_every, n=n)
        check_frame_mask(polluted, n, t, name="polluted")
        all_marked = polluted.all(dim=1)
        if bool(all_marked.any()):
            bad = all_marked.nonzero().flatten().tolist()
            raise ValueError(f"every frame is marked polluted in video(s) {bad}: no clean frame to rebuild from")
        return polluted.to(video.device)

    def _plan(self, mask: torch.Tensor):
        """Lists (n, t, before, after) for every polluted frame."""
        jobs = []
        for i in range(mask.shape[0]):
            before, after = _neighbours(mask[i].cpu())
            for t in mask[i].nonzero().flatten().tolist():
                b, a = before[t], after[t] if self.bidirectional or before[t] < 0 else -1
                jobs.append((i, t, b, a))
        return jobs

    @torch.no_grad()
    def forward(
        self, video: torch.Tensor, *, polluted: torch.Tensor | None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Rebuild the frames marked in ``polluted``; unmarked frames are copied unchanged."""
        check_batch(video)
        mask = self._mask(video, polluted)
        if not self.randomised:
            return self._rebuild(video, mask, self._options())
        out = video.detach().clone(memory_format=torch.contiguous_format)
        for i, (dy, dx, qp) in enumerate(self.draw(video.shape[0], generator)):
            if not bool(mask[i].any()):
                continue
            one, marked, options = video[i : i + 1].detach(), mask[i : i + 1], self._options(qp)
            rebuilt = self._rebuild(one, marked, options)
            if dy or dx:  # the grid from (dy, dx) on; the strips above and left of it keep the grid at 0
                rebuilt[..., dy:, dx:] = self._rebuild(one[..., dy:, dx:], marked, options)
            out[i] = rebuilt[0]
        return out

    def draw(self, n: int, generator: torch.Generator | None = None) -> list[tuple[int, int, int]]:
        """Per video ``(dy, dx, qp)``: the grid offset (0, 0 without ``random_grid``) and the QP
        (``qp`` without ``qp_range``) that a randomised ``forward`` uses."""
        offsets = torch.randint(0, self.block, (n, 2), generator=generator) if self.random_grid else torch.zeros(n, 2)
        lo, hi = self.qp_range or (self.qp, self.qp)
        qps = (
            torch.randint(lo, hi + 1, (n,), generator=generator) if self.qp_range is not None else torch.full((n,), lo)
        )
        return [(int(o[0]), int(o[1]), int(q)) for o, q in zip(offsets, qps)]

    def _rebuild(self, video: torch.Tensor, mask: torch.Tensor, options: dict) -> torch.Tensor:
        """The deterministic defense with ``options`` (:meth:`_options`) on ``video (N, T, 3, H, W)``."""
        out = video.detach().clone(memory_format=torch.contiguous_format)
        jobs = self._plan(mask)
        kernels = _numba_kernels() if self.backend != "torch" else None
        if kernels is not None and video.device.type == "cpu":
            self._forward_numba(kernels, video, out, jobs, options)
            return out
        for start in range(0, len(jobs), self.chunk):
            part = jobs[start : start + self.chunk]
            n_idx = torch.tensor([j[0] for j in part], device=video.device)
            t_idx = torch.tensor([j[1] for j in part], device=video.device)
            b_idx = torch.tensor([max(j[2], 0) for j in part], device=video.device)
            a_idx = torch.tensor([max(j[3], 0) for j in part], device=video.device)
            has_b = torch.tensor([j[2] >= 0 for j in part], device=video.device)
            has_a = torch.tensor([j[3] >= 0 for j in part], device=video.device)
            rebuilt = rebuild_frames(
                video[n_idx, t_idx],
                video[n_idx, b_idx] if bool(has_b.any()) else None,
                video[n_idx, a_idx] if bool(has_a.any()) else None,
                has_prev=has_b,
                has_next=has_a,
                **options,
            )
            out[n_idx, t_idx] = rebuilt.to(out.dtype)
        return out

    def _forward_numba(self, kernels, video: torch.Tensor, out: torch.Tensor, jobs: list, options: dict) -> None:
        """Rebuild frame by frame straight into ``out`` (contiguous; no gathered copies), the
        reference planes reused along a run of polluted frames. A float32 ``out`` (a copy of the
        input) is also read from, instead of a second contiguous copy of a strided input: a
        reference is never a rebuilt frame, and a rebuilt frame's rows are read before written."""
        direct = out.dtype == torch.float32
        frames = out.numpy() if direct else video.detach().to(torch.float32).contiguous().numpy()
        target = out.numpy() if direct else np.empty_like(frames[0, :1])
        worker = _NumbaRebuilder(kernels, **{k: v for k, v in options.items() if k != "backend"})
        for n, t, b, a in jobs:
            dst = target[n, t : t + 1] if direct else target
            worker.rebuild(frames[n, t : t + 1], [(frames[n, r : r + 1], (n, r)) for r in (b, a) if r >= 0], dst)
            if not direct:
                out[n, t] = torch.from_numpy(dst[0]).to(out.dtype)

    def surrogate(
        self, video: torch.Tensor, *, polluted: torch.Tensor | None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """BPDA stand-in: identity, or the motion-compensated prediction of the polluted frames
        (vectors found without gradient; the gather is differentiable in the reference frames)."""
        if self.surrogate_kind == "identity":
            return video
        check_batch(video, check_range=False)
        mask = self._mask(video, polluted)
        frames = []
        for i in range(video.shape[0]):
            before, after = _neighbours(mask[i].cpu())
            row = []
            for t in range(video.shape[1]):
                if not bool(mask[i, t]):
                    row.append(video[i, t])
                    continue
                refs = [r for r in (before[t], after[t] if self.bidirectional or before[t] < 0 else -1) if r >= 0]
                cur = video[i, t].detach()
                best_pred, best_mad = None, None
                for r in refs:
                    with torch.no_grad():
                        vec, mad = estimate_motion(
                            cur,
                            video[i, r].detach(),
                            block=self.block,
                            search=self.search,
                            method=self.method,
                            channels=self.channels,
                            backend=self.backend,
                        )
                    pred = motion_compensate(video[i, r], vec, block=self.block)
                    if best_pred is None:
                        best_pred, best_mad = pred, mad
                    else:
                        pick = (mad < best_mad).repeat_interleave(self.block, 0).repeat_interleave(self.block, 1)
                        pick = pick[: cur.shape[-2], : cur.shape[-1]]
                        best_pred = torch.where(pick, pred, best_pred)
                        best_mad = torch.minimum(mad, best_mad)
                row.append(best_pred)
            frames.append(torch.stack(row))
        return torch.stack(frames)


def defend_stream(
    frames: Iterable[torch.Tensor] | Iterable[np.ndarray],
    polluted: Iterable[bool] | Callable[[int], bool],
    defense: TemporalDefense,
) -> Iterator[torch.Tensor] | Iterator[np.ndarray]:
    """Defend a stream of frames (e.g. decoded one by one) without holding the whole video.

    Each polluted frame waits until the next clean frame arrives (its forward reference); a run
    of polluted frames at the end of the stream uses the previous clean frame only. Memory: the
    longest run of consecutive polluted frames, plus one clean frame.

    Args:
        frames: float frames ``(3, H, W)`` in [0, 1], or decoded frames, uint8 numpy ``(H, W, 3)``
            RGB (the file paths: rebuilt by :func:`rebuild_frames_uint8`, never converted to
            float; the float path's frames rounded to 8 bits). All the same size and kind.
        polluted: one flag per frame (zipped with ``frames``; a count mismatch is an error), or a
            function ``index -> bool`` (for streams of unknown length).
        defense: the settings to use (its ``bidirectional`` is honoured).

    Yields:
        frames of the input's kind: clean frames unchanged (the same objects), polluted frames
        rebuilt, in input order.

    Raises:
        ValueError: a flag count that differs from the frame count, frames of mixed kinds or
            sizes, no clean frame at all, or a randomised ``defense`` (streams use fixed settings).
    """
    if defense.randomised:
        raise ValueError("defend_stream needs a deterministic TemporalDefense (no random_grid / qp_range)")
    sentinel = object()
    flags = map(polluted, itertools.count()) if callable(polluted) else iter(polluted)
    last_clean = None
    pending: list = []
    kind = None  # (uint8?, shape) of the first frame

    def flush(next_clean) -> list:
        out = []
        nxt_ok = next_clean is not None and (defense.bidirectional or last_clean is None)
        for start in range(0, len(pending), defense.chunk):
            if kind[0]:
                cur = np.stack(pending[start : start + defense.chunk])
                out.extend(rebuild_frames_uint8(cur, last_clean, next_clean if nxt_ok else None, **defense._options()))
                continue
            cur = torch.stack(pending[start : start + defense.chunk])
            nxt = next_clean.unsqueeze(0).expand_as(cur) if nxt_ok else None
            prev = None if last_clean is None else last_clean.unsqueeze(0).expand_as(cur)
            out.extend(rebuild_frames(cur, prev, nxt, **defense._options()).unbind(0))
        pending.clear()
        return out

    for frame in frames:
        flag = next(flags, sentinel)
        if flag is sentinel:
            raise ValueError("polluted has fewer flags than there are frames")
        decoded = isinstance(frame, np.ndarray)
        if decoded:
            if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[-1] != 3:
                raise ValueError(f"frame must be uint8 (H, W, 3) RGB, got {frame.dtype} {frame.shape}")
        else:
            check_video(frame.unsqueeze(0), name="frame")
        if kind is None:
            kind = (decoded, tuple(frame.shape))
        elif kind != (decoded, tuple(frame.shape)):
            raise ValueError(f"frames differ in kind or size: {kind} then {(decoded, tuple(frame.shape))}")
        if bool(flag):
            pending.append(frame)
            continue
        yield from flush(frame)
        last_clean = frame
        yield frame
    if not callable(polluted) and next(flags, sentinel) is not sentinel:
        raise ValueError("polluted has more flags than there are frames")
    if pending:
        if last_clean is None:
            raise ValueError("every frame of the stream is marked polluted: no clean frame to rebuild from")
        yield from flush(None)

"""Block-matching motion estimation and motion compensation (the paper's Eq. 2 and Eq. 3).

A frame is split into non-overlapping ``block x block`` blocks; for each block the displacement
``(dy, dx)``, ``|dy|, |dx| <= search``, into the reference frame that minimises the mean
absolute difference is its motion vector::

    MAD(dy, dx) = 1 / (M N) * sum_m sum_n |cur(y + m, x + n) - ref(y + m + dy, x + n + dx)|

``SAD = MAD * M * N`` differs by a constant factor, so both pick the same vector; the kernels
compute integer SADs and return ``MAD = SAD / (M N)`` (averaged over channels too).

Conventions:

* Planes are on the 0..255 scale. Values are rounded to integers first (8-bit samples, as a
  codec sees them), which makes every cost exact and ties reproducible.
* Frames whose size is not a multiple of the block are padded by replicating the last row /
  column; vectors are returned for the padded block grid ``ceil(H / block) x ceil(W / block)``.
* Displacements that reach outside the frame read a reference padded by replication (the
  "unrestricted motion vectors" of H.263 / H.264): every block, border blocks too, searches the
  full ``(2 search + 1)^2`` window.
* Ties are broken deterministically: among equal costs the smaller ``dy^2 + dx^2`` wins, then
  the smaller ``|dy| + |dx|``, then the smaller ``(dy, dx)`` lexicographically. Full search and
  the fast searches share this rule (a candidate's key is ``SAD * R + rank``), so a fast search
  that visits the true minimum returns exactly the full-search vector.

Search methods (:data:`SEARCH_METHODS`): ``full`` (exhaustive), ``tss`` (three-step),
``ntss`` (new three-step, Li, Zeng, Liou 1994), ``diamond`` (Zhu, Ma 2000: large diamond
repeated until the center wins, then the small diamond), ``hexagon`` (Zhu, Lin, Chau 2002:
large hexagon repeated, then the 4-point small pattern). The fast searches evaluate the
origin first and only move while the cost improves.

Backends: ``numba`` (CPU kernels, used automatically for CPU tensors when numba is installed;
on x86 the SAD of 8 columns is one ``psadbw`` instruction, as in video encoders) and ``torch``
(vectorised over all blocks and frames; CPU or CUDA). Both give identical results.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
import torch.nn.functional as F

from vidshield.video import rgb_to_luma

__all__ = [
    "SEARCH_METHODS",
    "block_match",
    "estimate_motion",
    "motion_compensate",
    "frame_planes",
]

SEARCH_METHODS = ("full", "tss", "ntss", "diamond", "hexagon")
_CHANNELS = ("luma", "rgb")
_BACKENDS = ("auto", "torch", "numba")

_SQUARE = [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)]
_LARGE_DIAMOND = [(-2, 0), (-1, -1), (-1, 1), (0, -2), (0, 2), (1, -1), (1, 1), (2, 0)]
_SMALL_DIAMOND = [(-1, 0), (0, -1), (0, 1), (1, 0)]
_LARGE_HEXAGON = [(-2, 0), (-1, -2), (-1, 2), (1, -2), (1, 2), (2, 0)]


def _tss_steps(search: int) -> list[int]:
    step = 2 ** (math.ceil(math.log2(search + 1)) - 1)
    steps = []
    while step >= 1:
        steps.append(step)
        step //= 2
    return steps


@functools.cache
def _stages(method: str, search: int) -> tuple[list[list[tuple[int, int]]], list[bool], bool]:
    """(offset lists per stage, repeat flag per stage, ntss rule) of a fast search."""
    if method == "tss":
        steps = _tss_steps(search)
        return [[(s * dy, s * dx) for dy, dx in _SQUARE] for s in steps], [False] * len(steps), False
    if method == "ntss":
        steps = _tss_steps(search)
        first = [(steps[0] * dy, steps[0] * dx) for dy, dx in _SQUARE]
        if steps[0] > 1:
            first += _SQUARE
        stages = [first] + [[(s * dy, s * dx) for dy, dx in _SQUARE] for s in steps[1:]]
        if steps[-1] != 1 or len(stages) == 1:
            stages.append(list(_SQUARE))
        return stages, [False] * len(stages), True
    if method == "diamond":
        return [_LARGE_DIAMOND, _SMALL_DIAMOND], [True, False], False
    if method == "hexagon":
        return [_LARGE_HEXAGON, _SMALL_DIAMOND], [True, False], False
    raise AssertionError(method)


@functools.cache
def _order(search: int) -> np.ndarray:
    """All displacements ``(R, 2)`` sorted by the tie-break rule (index = rank)."""
    cands = [(dy, dx) for dy in range(-search, search + 1) for dx in range(-search, search + 1)]
    cands.sort(key=lambda v: (v[0] ** 2 + v[1] ** 2, abs(v[0]) + abs(v[1]), v[0], v[1]))
    return np.asarray(cands, dtype=np.int64)


@functools.cache
def _rank_table(search: int) -> np.ndarray:
    """``rank[dy + search, dx + search]``."""
    order = _order(search)
    table = np.empty((2 * search + 1, 2 * search + 1), dtype=np.int64)
    table[order[:, 0] + search, order[:, 1] + search] = np.arange(len(order))
    return table


@functools.lru_cache(maxsize=1)
def _numba_kernels():
    try:
        from vidshield.defenses.temporal import _numba_kernels
    except ImportError:
        return None
    return _numba_kernels


def _pad_to_grid(x: torch.Tensor, block: int, extra: int) -> torch.Tensor:
    """Replicate-pad ``(B, C, H, W)`` to a multiple of ``block`` (bottom/right), plus ``extra`` all round."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % block, (-w) % block
    if not (ph or pw or extra):
        return x
    y = x if x.is_floating_point() else x.to(torch.float32)
    y = F.pad(y, (extra, pw + extra, extra, ph + extra), mode="replicate")
    return y if x.is_floating_point() else y.to(x.dtype)


def _check_planes(cur, ref, channel_dim: bool) -> None:
    for name, x in (("cur", cur), ("ref", ref)):
        if not isinstance(x, torch.Tensor) or x.dtype == torch.bool or x.is_complex():
            raise ValueError(f"{name} must be a real tensor of planes on the 0..255 scale")
        need = 3 if channel_dim else 2
        if x.dim() < need or any(s == 0 for s in x.shape[-need:]):
            layout = "(..., C, H, W)" if channel_dim else "(..., H, W)"
            raise ValueError(f"{name} must have shape {layout}, got {tuple(x.shape)}")
    if cur.shape != ref.shape:
        raise ValueError(f"cur and ref must have the same shape, got {tuple(cur.shape)} and {tuple(ref.shape)}")
    if cur.device != ref.device:
        raise ValueError(f"cur and ref must be on the same device, got {cur.device} and {ref.device}")


def _check_search_args(block, search, method, backend) -> None:
    if method not in SEARCH_METHODS:
        raise ValueError(f"method must be one of {SEARCH_METHODS}, got {method!r}")
    if backend not in _BACKENDS:
        raise ValueError(f"backend must be one of {_BACKENDS}, got {backend!r}")
    for name, v, lo in (("block", block, 1), ("search", search, 0)):
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise ValueError(f"{name} must be an int >= {lo}, got {v!r}")
    if block * 255 > 32767:
        raise ValueError(f"block must be at most 128, got {block}")


def _float32_frames(x: torch.Tensor) -> np.ndarray:
    """Frames ``(..., C, H, W)`` -> contiguous float32 numpy ``(B, C, H, W)`` (no copy when possible)."""
    return x.detach().reshape(-1, *x.shape[-3:]).to(torch.float32).contiguous().numpy()


def block_match(
    cur: torch.Tensor,
    ref: torch.Tensor,
    *,
    block: int = 8,
    search: int = 7,
    method: str = "full",
    channel_dim: bool = False,
    backend: str = "auto",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Find each block's motion vector into ``ref`` (Eq. 2, Eq. 3).

    Args:
        cur: planes ``(..., H, W)`` on the 0..255 scale (uint8, integer or float; rounded to
            integers), or ``(..., C, H, W)`` with ``channel_dim=True`` (cost summed over C).
        ref: reference planes, same shape and device.
        block: block size M = N (8 default, 16 available; any size >= 1).
        search: search range p: ``|dy|, |dx| <= p``.
        method: one of :data:`SEARCH_METHODS`.
        channel_dim: whether dim -3 holds channels whose costs add up (RGB matching).
        backend: ``auto`` (numba for CPU tensors when installed, else torch), ``torch``, ``numba``.

    Returns:
        ``(vectors, mad)``: int64 ``(..., Hb, Wb, 2)`` holding ``(dy, dx)`` (the block at
        ``(by, bx)`` is best predicted by the reference block whose top-left corner is
        ``(by * block + dy, bx * block + dx)``) and float32 ``(..., Hb, Wb)`` MAD on the
        0..255 scale, with ``Hb = ceil(H / block)``, ``Wb = ceil(W / block)``.
    """
    _check_planes(cur, ref, channel_dim)
    _check_search_args(block, search, method, backend)
    lead = cur.shape[:-3] if channel_dim else cur.shape[:-2]
    h, w = cur.shape[-2:]
    nc = cur.shape[-3] if channel_dim else 1

    kernels = _numba_kernels() if backend != "torch" else None
    if backend == "numba" and (kernels is None or cur.device.type != "cpu"):
        raise ValueError("backend='numba' needs numba installed and CPU tensors")
    if search == 0:
        method = "full"  # a single candidate: every search is the same
    if kernels is not None and cur.device.type == "cpu":
        c, r = (_integer_planes(x.reshape(-1, nc, h, w)) for x in (cur, ref))
        if c.dtype != r.dtype:
            c, r = c.to(torch.int16), r.to(torch.int16)
        vec, sad = _match_numba(
            kernels,
            kernels.pad_planes(c.numpy(), block, 0),
            kernels.pad_planes(r.numpy(), block, search),
            block,
            search,
            method,
        )
        vec, sad = torch.from_numpy(vec), torch.from_numpy(sad)
    else:
        c, r = (
            _pad_to_grid(_integer_planes(x.reshape(-1, nc, h, w)).to(torch.int16), block, e)
            for x, e in ((cur, 0), (ref, search))
        )
        vec, sad = _match_torch(c, r, block, search, method)
    mad = sad.to(torch.float32) / (block * block * nc)
    hb, wb = vec.shape[1:3]
    return vec.reshape(*lead, hb, wb, 2).to(cur.device), mad.reshape(*lead, hb, wb).to(cur.device)


def _integer_planes(x: torch.Tensor) -> torch.Tensor:
    """Planes rounded to integers: uint8 when every value is in 0..255, int16 otherwise."""
    if x.dtype == torch.uint8:
        return x.contiguous()
    x = x.round() if x.is_floating_point() else x
    if x.numel() and int(x.min()) >= 0 and int(x.max()) <= 255:
        return x.to(torch.uint8).contiguous()
    return x.to(torch.int16).contiguous()


def _match_numba(kernels, c: np.ndarray, r: np.ndarray, block: int, search: int, method: str):
    """Numba block matching of padded planes (see :func:`_match_torch`) -> numpy (vectors, SAD)."""
    if method == "full":
        kernel = kernels.full_search
        if c.dtype == np.uint8 and block % 8 == 0 and kernels.HAS_AVX2:
            kernel = kernels.full_search_psadbw
        elif c.dtype == np.uint8 and block % 4 == 0 and c.shape[1] * block * block * 255 < 1 << 16:
            kernel = kernels.full_search_packed
        return kernel(c, r, block, search, _order(search))
    stages, repeat, ntss = _stages(method, search)
    offsets = np.asarray([o for st in stages for o in st], dtype=np.int64)
    lengths = np.asarray([len(st) for st in stages], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    vec, key = kernels.pattern_search(
        c, r, block, search, _rank_table(search), offsets, starts, lengths, np.asarray(repeat), ntss
    )
    return vec, key // len(_order(search))


def _match_torch(c, r, block, search, method):
    """Vectorised over frames and blocks. c (B, C, Hp, Wp), r padded by ``search``; int16."""
    nb, nc, hp, wp = c.shape
    hb, wb = hp // block, wp // block
    n_rank = (2 * search + 1) ** 2
    rank = torch.from_numpy(_rank_table(search)).to(c.device)
    c32 = c.to(torch.int32)
    r32 = r.to(torch.int32)
    if method == "full":
        # on a GPU, a row of displacements (a dy, every dx) per step: the 2p + 1 horizontal shifts
        # of the reference are a view (unfold), so a step is a handful of kernels, not one per
        # candidate, and frames go in large steps; on a CPU one displacement at a time over a few
        # frames keeps the differences in the cache
        width = 2 * search + 1
        cuda = c.device.type == "cuda"
        group, budget = (width, 256 << 20) if cuda else (1, 4 << 20)
        frames_per_step = max(1, budget // (nc * hp * group * wp * 4))
        best = torch.full((nb, hb, wb), torch.iinfo(torch.int64).max, dtype=torch.int64, device=c.device)
        for start in range(0, nb, frames_per_step):
            part = slice(start, start + frames_per_step)
            cur_part, shifts = c32[part].unsqueeze(3), r32[part].unfold(-1, wp, 1)  # (b, C, Hr, 2p+1, Wp)
            b = cur_part.shape[0]
            for dy in range(-search, search + 1):
                for g in range(0, width, group):
                    diff = (cur_part - shifts[:, :, search + dy : search + dy + hp, g : g + group]).abs_()
                    rows = diff.view(b, nc, hp, group, wb, block).sum(dim=-1)  # the block's columns first
                    sad = rows.view(b, nc, hb, block, group, wb).sum(dim=(1, 3))  # (b, Hb, group, Wb)
                    keys = sad * n_rank + rank[dy + search, g : g + group].view(1, 1, group, 1)
                    step_best = keys[:, :, 0] if group == 1 else keys.amin(dim=2)  # (amin over 1 is slow on CPU)
                    torch.minimum(best[part], step_best, out=best[part])
        order = torch.from_numpy(_order(search)).to(c.device)
        return order[best % n_rank], best // n_rank

    # fast searches: gather each candidate block from the padded reference
    rw = r32.shape[-1]
    flat_ref = r32.reshape(nb, nc, -1)
    cur_blocks = (
        c32.view(nb, nc, hb, block, wb, block).permute(0, 1, 2, 4, 3, 5).reshape(nb, nc, hb * wb, block * block)
    )
    base_y = (torch.arange(hb, device=c.device) * block + search).view(hb, 1).expand(hb, wb).reshape(-1)
    base_x = (torch.arange(wb, device=c.device) * block + search).view(1, wb).expand(hb, wb).reshape(-1)
    inner = (torch.arange(block, device=c.device).view(block, 1) * rw + torch.arange(block, device=c.device)).reshape(
        -1
    )

    def keys_at(vy: torch.Tensor, vx: torch.Tensor) -> torch.Tensor:
        """vy, vx int64 (B, Hb*Wb) inside the window -> keys int64 (B, Hb*Wb)."""
        top = (base_y + vy) * rw + base_x + vx  # (B, nblk)
        idx = (top.unsqueeze(-1) + inner).reshape(nb, 1, -1).expand(nb, nc, -1)
        cand = flat_ref.gather(2, idx).view(nb, nc, hb * wb, block * block)
        sad = (cur_blocks - cand).abs_().sum(dim=(1, 3), dtype=torch.int64)
        return sad * n_rank + rank[vy + search, vx + search]

    state = {"cy": torch.zeros(nb, hb * wb, dtype=torch.int64, device=c.device)}
    state["cx"] = state["cy"].clone()
    state["best"] = keys_at(state["cy"], state["cx"])

    def step(offsets, mask: torch.Tensor) -> torch.Tensor:
        """Evaluate center + offsets for the blocks in ``mask``; move to the best. -> moved mask."""
        cy, cx, best = state["cy"], state["cx"], state["best"]
        ny, nx, moved = cy, cx, torch.zeros_like(mask)
        for oy, ox in offsets:
            qy, qx = cy + oy, cx + ox
            inside = mask & (qy.abs() <= search) & (qx.abs() <= search)
            if not bool(inside.any()):
                continue
            k = keys_at(qy.clamp(-search, search), qx.clamp(-search, search))
            better = inside & (k < best)
            best = torch.where(better, k, best)
            ny, nx = torch.where(better, qy, ny), torch.where(better, qx, nx)
            moved = moved | better
        state.update(cy=ny, cx=nx, best=best)
        return moved

    stages, repeat, ntss = _stages(method, search)
    active = torch.ones(nb, hb * wb, dtype=torch.bool, device=c.device)
    for s, offsets in enumerate(stages):
        if repeat[s]:
            live = active
            for _ in range(n_rank):
                live = live & step(offsets, live)
                if not bool(live.any()):
                    break
        else:
            step(offsets, active)
        if ntss and s == 0:  # new three-step search: stop at the origin, refine once near it
            cy, cx = state["cy"], state["cx"]
            origin = (cy == 0) & (cx == 0)
            near = (cy.abs() <= 1) & (cx.abs() <= 1) & ~origin
            step(stages[-1], near)
            active = ~(origin | near)
    vec = torch.stack((state["cy"], state["cx"]), dim=-1).view(nb, hb, wb, 2)
    return vec, (state["best"] // n_rank).view(nb, hb, wb)


def frame_planes(frames: torch.Tensor, channels: str = "luma") -> torch.Tensor:
    """RGB frames ``(..., 3, H, W)`` in [0, 1] -> 8-bit matching planes ``(..., C, H, W)`` int16.

    ``luma``: BT.601 luma (C = 1); ``rgb``: the three channels (C = 3). Rounded to 0..255.
    """
    if channels not in _CHANNELS:
        raise ValueError(f"channels must be one of {_CHANNELS}, got {channels!r}")
    planes = rgb_to_luma(frames).unsqueeze(-3) if channels == "luma" else frames
    return planes.mul(255.0).round_().clamp_(0, 255).to(torch.int16)


def estimate_motion(
    cur: torch.Tensor,
    ref: torch.Tensor,
    *,
    block: int = 8,
    search: int = 7,
    method: str = "full",
    channels: str = "luma",
    backend: str = "auto",
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`block_match` on RGB frames ``(..., 3, H, W)`` in [0, 1].

    Args:
        cur, ref: float RGB frames in [0, 1], same shape.
        channels: ``luma`` (BT.601, default) or ``rgb`` (cost summed over the three channels).
        block, search, method, backend: as :func:`block_match`.

    Returns:
        ``(vectors int64 (..., Hb, Wb, 2), mad float32 (..., Hb, Wb))``, MAD on the 0..255 scale.
    """
    for name, x in (("cur", cur), ("ref", ref)):
        if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.dim() < 3 or x.shape[-3] != 3:
            raise ValueError(f"{name} must be float RGB frames (..., 3, H, W) in [0, 1]")
    if channels not in _CHANNELS:
        raise ValueError(f"channels must be one of {_CHANNELS}, got {channels!r}")
    if cur.shape != ref.shape:
        raise ValueError(f"cur and ref must have the same shape, got {tuple(cur.shape)} and {tuple(ref.shape)}")
    _check_search_args(block, search, method, backend)
    kernels = _numba_kernels() if backend != "torch" else None
    if backend == "numba" and (kernels is None or cur.device.type != "cpu"):
        raise ValueError("backend='numba' needs numba installed and CPU tensors")
    if kernels is not None and cur.device.type == "cpu" and ref.device.type == "cpu":
        lead = cur.shape[:-3]
        c, r = (
            kernels.to_planes(_float32_frames(x), channels == "luma", block, e) for x, e in ((cur, 0), (ref, search))
        )
        vec, sad = _match_numba(kernels, c, r, block, search, "full" if search == 0 else method)
        mad = torch.from_numpy(sad).to(torch.float32) / (block * block * c.shape[1])
        hb, wb = vec.shape[1:3]
        return torch.from_numpy(vec).reshape(*lead, hb, wb, 2), mad.reshape(*lead, hb, wb)
    return block_match(
        frame_planes(cur, channels),
        frame_planes(ref, channels),
        block=block,
        search=search,
        method=method,
        channel_dim=True,
        backend=backend,
    )


def motion_compensate(ref: torch.Tensor, vectors: torch.Tensor, *, block: int = 8) -> torch.Tensor:
    """Build the predicted frame: each block copied from ``ref`` displaced by its vector.

    Reads outside the frame use the replicated border (as :func:`block_match`); the block grid
    covers the frame padded to a multiple of ``block`` and the result is cropped back.
    Differentiable with respect to ``ref`` (a gather), which the BPDA surrogate uses.

    Args:
        ref: reference frames ``(..., C, H, W)`` (any dtype).
        vectors: int64 ``(..., Hb, Wb, 2)`` from :func:`block_match`, same leading dims,
            ``Hb = ceil(H / block)``, ``Wb = ceil(W / block)``.
        block: the block size the vectors were estimated with.

    Returns:
        ``(..., C, H, W)`` prediction, same dtype and device as ``ref``.
    """
    if not isinstance(ref, torch.Tensor) or ref.dim() < 3:
        raise ValueError(f"ref must be a tensor (..., C, H, W), got {getattr(ref, 'shape', type(ref))}")
    h, w = ref.shape[-2:]
    hb, wb = -(-h // block), -(-w // block)
    lead = ref.shape[:-3]
    if (
        not isinstance(vectors, torch.Tensor)
        or vectors.dtype not in (torch.int64, torch.int32)
        or tuple(vectors.shape) != (*lead, hb, wb, 2)
    ):
        raise ValueError(
            f"vectors must be int64 {(*lead, hb, wb, 2)} for ref {tuple(ref.shape)} and block {block}, "
            f"got {getattr(vectors, 'dtype', None)} {tuple(getattr(vectors, 'shape', ()))}"
        )
    if vectors.numel() == 0:
        return ref.clone()
    nc = ref.shape[-3]
    v = vectors.reshape(-1, hb, wb, 2).to(torch.int64).contiguous()
    kernels = _numba_kernels()
    if kernels is not None and ref.device.type == "cpu" and not (torch.is_grad_enabled() and ref.requires_grad):
        frames = _float32_frames(ref)
        no_pick = np.zeros(v.shape[:3], dtype=np.bool_)
        out = torch.from_numpy(
            kernels.compensate(frames, frames, v.numpy(), v.numpy(), no_pick, block, np.empty_like(frames))
        )
        return out.to(ref.dtype).reshape(ref.shape)
    reach = int(vectors.abs().max())
    x = ref.reshape(-1, nc, h, w)
    padded = _pad_to_grid(x if x.is_floating_point() else x.to(torch.float32), block, reach)
    ph, pw = padded.shape[-2:]
    # per-pixel source coordinates in the padded reference
    ys = torch.arange(hb * block, device=ref.device)
    xs = torch.arange(wb * block, device=ref.device)
    vy = v[..., 0].repeat_interleave(block, 1).repeat_interleave(block, 2)  # (B, Hp, Wp)
    vx = v[..., 1].repeat_interleave(block, 1).repeat_interleave(block, 2)
    src = (ys.view(1, -1, 1) + vy + reach) * pw + (xs.view(1, 1, -1) + vx + reach)
    out = padded.reshape(padded.shape[0], nc, ph * pw).gather(2, src.reshape(src.shape[0], 1, -1).expand(-1, nc, -1))
    out = out.view(-1, nc, hb * block, wb * block)[..., :h, :w]
    return out.to(ref.dtype).reshape(ref.shape)

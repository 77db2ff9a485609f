"""Numba CPU kernels for block matching (optional accelerator of :mod:`motion`).

Same semantics as the torch path: integer SAD summed over channels, candidates ranked by
``key = SAD * R + rank`` (``rank`` = the tie-break order of the displacement, ``R`` = number of
displacements), the smallest key wins. Imported lazily; :mod:`motion` falls back to torch when
numba is not installed.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, boundscheck=False)
def full_search(cur, refp, block, search, order):
    """cur int16 (B, C, Hp, Wp); refp int16 (B, C, Hp+2p, Wp+2p); order int64 (R, 2) by rank.

    Returns vectors int64 (B, Hb, Wb, 2) and SAD int64 (B, Hb, Wb).
    """
    nb, nc, hp, wp = cur.shape
    hb, wb = hp // block, wp // block
    vec = np.zeros((nb, hb, wb, 2), np.int64)
    sad = np.zeros((nb, hb, wb), np.int64)
    acc = np.zeros(wp, np.int32)
    best = np.zeros(wb, np.int64)
    for t in range(nb):
        for by in range(hb):
            y0 = by * block
            best[:] = 1 << 40
            for k in range(order.shape[0]):
                dy = order[k, 0]
                dx = order[k, 1]
                acc[:] = 0
                for c in range(nc):
                    for i in range(block):
                        crow = cur[t, c, y0 + i]
                        rrow = refp[t, c, y0 + i + search + dy, search + dx : search + dx + wp]
                        for x in range(wp):
                            acc[x] += abs(np.int32(crow[x]) - np.int32(rrow[x]))
                for bx in range(wb):
                    s = 0
                    for j in range(block):
                        s += acc[bx * block + j]
                    if s < best[bx]:  # strict: an earlier (lower-rank) candidate wins ties
                        best[bx] = s
                        vec[t, by, bx, 0] = dy
                        vec[t, by, bx, 1] = dx
            sad[t, by, :] = best
    return vec, sad


@numba.njit(inline="always", boundscheck=False)
def _key(cur, refp, t, y0, x0, dy, dx, block, search, rank_table, n_rank):
    s = 0
    for c in range(cur.shape[1]):
        for i in range(block):
            for j in range(block):
                s += abs(np.int32(cur[t, c, y0 + i, x0 + j]) - np.int32(refp[t, c, y0 + i + search + dy, x0 + j + search + dx]))
    return np.int64(s) * n_rank + rank_table[dy + search, dx + search]


@numba.njit(cache=True, boundscheck=False)
def pattern_search(cur, refp, block, search, rank_table, offsets, starts, lengths, repeat, ntss):
    """Stage-wise pattern search per block (see ``motion._PATTERNS``).

    Stage s evaluates ``center + offsets[starts[s]:starts[s]+lengths[s]]`` (inside the window)
    and moves to the smallest key; ``repeat[s]`` repeats it until the center stays. ``ntss``:
    after stage 0, a block whose best is the origin stops, one within +-1 does a final 8-point
    step around it and stops (new three-step search).

    Returns vectors int64 (B, Hb, Wb, 2) and keys int64 (B, Hb, Wb).
    """
    nb, nc, hp, wp = cur.shape
    hb, wb = hp // block, wp // block
    n_rank = rank_table.size
    vec = np.zeros((nb, hb, wb, 2), np.int64)
    keys = np.zeros((nb, hb, wb), np.int64)
    n_stages = starts.shape[0]
    for t in range(nb):
        for by in range(hb):
            for bx in range(wb):
                y0 = by * block
                x0 = bx * block
                cy = 0
                cx = 0
                best = _key(cur, refp, t, y0, x0, 0, 0, block, search, rank_table, n_rank)
                s = 0
                while s < n_stages:
                    for _ in range(n_rank):
                        ny = cy
                        nx = cx
                        for k in range(starts[s], starts[s] + lengths[s]):
                            qy = cy + offsets[k, 0]
                            qx = cx + offsets[k, 1]
                            if qy < -search or qy > search or qx < -search or qx > search:
                                continue
                            kk = _key(cur, refp, t, y0, x0, qy, qx, block, search, rank_table, n_rank)
                            if kk < best:
                                best = kk
                                ny = qy
                                nx = qx
                        moved = ny != cy or nx != cx
                        cy = ny
                        cx = nx
                        if not (repeat[s] and moved):
                            break
                    if ntss and s == 0:
                        if cy == 0 and cx == 0:
                            break
                        if abs(cy) <= 1 and abs(cx) <= 1:
                            s = n_stages - 1  # the last stage is the 8-point unit square
                            continue
                    s += 1
                vec[t, by, bx, 0] = cy
                vec[t, by, bx, 1] = cx
                keys[t, by, bx] = best
    return vec, keys


@numba.njit(cache=True, boundscheck=False)
def _code_block_4x4(blk, mf, v, qbits, offset, shift):
    """In place on int64 (4, 4): forward integer transform, quantisation, dequantisation, inverse
    transform with the final (+32) >> 6, in the torch path's order and integer arithmetic."""
    for i in range(4):  # forward, rows
        a0, a1, a2, a3 = blk[i, 0], blk[i, 1], blk[i, 2], blk[i, 3]
        s03, d03, s12, d12 = a0 + a3, a0 - a3, a1 + a2, a1 - a2
        blk[i, 0], blk[i, 1], blk[i, 2], blk[i, 3] = s03 + s12, 2 * d03 + d12, s03 - s12, d03 - 2 * d12
    for j in range(4):  # forward, columns
        a0, a1, a2, a3 = blk[0, j], blk[1, j], blk[2, j], blk[3, j]
        s03, d03, s12, d12 = a0 + a3, a0 - a3, a1 + a2, a1 - a2
        blk[0, j], blk[1, j], blk[2, j], blk[3, j] = s03 + s12, 2 * d03 + d12, s03 - s12, d03 - 2 * d12
    for i in range(4):  # quantise, dequantise
        for j in range(4):
            y = blk[i, j]
            level = ((abs(y) * mf[i, j] + offset) >> qbits) * (1 if y > 0 else (-1 if y < 0 else 0))
            blk[i, j] = (level * v[i, j]) << shift
    for i in range(4):  # inverse, rows
        d0, d1, d2, d3 = blk[i, 0], blk[i, 1], blk[i, 2], blk[i, 3]
        z0, z1, z2, z3 = d0 + d2, d0 - d2, (d1 >> 1) - d3, d1 + (d3 >> 1)
        blk[i, 0], blk[i, 1], blk[i, 2], blk[i, 3] = z0 + z3, z1 + z2, z1 - z2, z0 - z3
    for j in range(4):  # inverse, columns
        d0, d1, d2, d3 = blk[0, j], blk[1, j], blk[2, j], blk[3, j]
        z0, z1, z2, z3 = d0 + d2, d0 - d2, (d1 >> 1) - d3, d1 + (d3 >> 1)
        blk[0, j], blk[1, j] = (z0 + z3 + 32) >> 6, (z1 + z2 + 32) >> 6
        blk[2, j], blk[3, j] = (z1 - z2 + 32) >> 6, (z0 - z3 + 32) >> 6


@numba.njit(cache=True, boundscheck=False)
def code_residual_4x4(x, mf, v, qbits, offset, shift):
    """H.264 4x4 residual coding of int32 planes (B, H, W), H and W multiples of 4, fused per block;
    mf, v int64 (4, 4) tables for this QP; shift = QP // 6. Returns int32 (B, H, W)."""
    nb, h, w = x.shape
    out = np.empty_like(x)
    blk = np.empty((4, 4), np.int64)
    for b in range(nb):
        for y0 in range(0, h, 4):
            for x0 in range(0, w, 4):
                for i in range(4):
                    for j in range(4):
                        blk[i, j] = x[b, y0 + i, x0 + j]
                _code_block_4x4(blk, mf, v, qbits, offset, shift)
                for i in range(4):
                    for j in range(4):
                        out[b, y0 + i, x0 + j] = blk[i, j]
    return out


@numba.njit(cache=True, boundscheck=False)
def rebuild_4x4(cur, pred, mf, v, qbits, offset, shift):
    """The whole residual step of the rebuild, fused: float32 (B, C, H, W) frames and predictions
    in [0, 1] -> clip(pred + code(round(255 (cur - pred))) / 255, 0, 1), float32 (B, C, H, W).
    Blocks past the frame edge read the edge (replicate padding), as the torch path pads."""
    nb, nc, h, w = cur.shape
    out = np.empty_like(cur)
    blk = np.empty((4, 4), np.int64)
    scale = np.float32(255.0)
    for b in range(nb):
        for c in range(nc):
            for y0 in range(0, h, 4):
                for x0 in range(0, w, 4):
                    for i in range(4):
                        yy = min(y0 + i, h - 1)
                        for j in range(4):
                            xx = min(x0 + j, w - 1)
                            r = np.rint((cur[b, c, yy, xx] - pred[b, c, yy, xx]) * scale)
                            blk[i, j] = np.int64(min(max(r, np.float32(-255.0)), np.float32(255.0)))
                    _code_block_4x4(blk, mf, v, qbits, offset, shift)
                    for i in range(min(4, h - y0)):
                        for j in range(min(4, w - x0)):
                            val = pred[b, c, y0 + i, x0 + j] + np.float32(blk[i, j]) / scale
                            out[b, c, y0 + i, x0 + j] = min(max(val, np.float32(0.0)), np.float32(1.0))
    return out


@numba.njit(cache=True, boundscheck=False)
def compensate(padded, vec, block, reach):
    """Block copy: padded float32 (B, C, Ph, Pw) (the reference padded by ``reach`` on every
    side and to the block grid), vec int64 (B, Hb, Wb, 2). Returns float32 (B, C, Hb*block, Wb*block)."""
    nb, nc = padded.shape[0], padded.shape[1]
    hb, wb = vec.shape[1], vec.shape[2]
    out = np.empty((nb, nc, hb * block, wb * block), np.float32)
    for b in range(nb):
        for by in range(hb):
            for bx in range(wb):
                sy = by * block + vec[b, by, bx, 0] + reach
                sx = bx * block + vec[b, by, bx, 1] + reach
                for c in range(nc):
                    for i in range(block):
                        for j in range(block):
                            out[b, c, by * block + i, bx * block + j] = padded[b, c, sy + i, sx + j]
    return out

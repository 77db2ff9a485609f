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

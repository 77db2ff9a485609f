"""Numba CPU kernels of the temporal defense (optional accelerator of :mod:`motion` and
:mod:`defense`; both fall back to torch when numba is not installed). Every kernel gives the
torch path's result bit for bit (tests/defenses/temporal/test_numba_paths.py).

Block matching: integer SAD summed over channels, candidates ranked by ``key = SAD * R + rank``
(``rank`` = the tie-break order of the displacement, ``R`` = number of displacements), the
smallest key wins. Three full-search kernels, from the most general to the fastest:
:func:`full_search` (any block, int16 or uint8 planes), :func:`full_search_packed` (uint8,
uint16 lanes) and :func:`full_search_psadbw` (uint8, ``block % 8 == 0``, x86 AVX2 ``vpsadbw``
through an LLVM intrinsic); :func:`pattern_search` runs the fast searches (SSE2 ``psadbw`` per
8 columns on x86). The rest: RGB -> 8-bit planes with the padding (:func:`to_planes`), the
block copy from one or two references (:func:`compensate`) and the whole 4x4 residual step
(:func:`rebuild_4x4`), processed in strips of four rows so that each pass vectorises.
"""

from __future__ import annotations

import llvmlite.binding as llvm_binding
import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

_FEATURES = llvm_binding.get_host_cpu_features()
#: x86 CPU features of the ``psadbw`` kernels: SSE2 for :func:`_key_psadbw`, AVX2 for
#: :func:`full_search_psadbw` (False elsewhere, e.g. on ARM, where the portable kernels run).
HAS_SSE2 = bool(_FEATURES.get("sse2", False))
HAS_AVX2 = bool(_FEATURES.get("avx2", False))


@numba.njit(cache=True, boundscheck=False)
def full_search(cur, refp, block, search, order):
    """Any block size and channel count. cur (B, C, Hp, Wp) and refp (B, C, Hp+2p, Wp+2p), int16
    or uint8 on the 0..255 scale; order int64 (R, 2) by rank.

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


@intrinsic
def _sad8(typingctx, a, a_at, b, b_at):
    """``sum_j |a[a_at + j] - b[b_at + j]|``, j < 8, of flat integer arrays: one SSE2 ``psadbw``
    for uint8 on x86, eight scalar steps otherwise."""
    sig = types.int64(a, types.intp, b, types.intp)

    def codegen(context, builder, signature, args):
        a_arr, a_i, b_arr, b_i = args
        data_a = context.make_array(signature.args[0])(context, builder, a_arr).data
        data_b = context.make_array(signature.args[2])(context, builder, b_arr).data
        word, int32 = ir.IntType(64), ir.IntType(32)
        if HAS_SSE2 and signature.args[0].dtype == types.uint8 and signature.args[2].dtype == types.uint8:
            pair, bytes16 = ir.VectorType(word, 2), ir.VectorType(ir.IntType(8), 16)
            psadbw = builder.module.declare_intrinsic(
                "llvm.x86.sse2.psad.bw", fnty=ir.FunctionType(pair, [bytes16, bytes16])
            )

            def load8(data, i):
                w = builder.load(builder.bitcast(builder.gep(data, [i]), word.as_pointer()), align=1)
                return builder.bitcast(
                    builder.insert_element(ir.Constant(pair, None), w, ir.Constant(int32, 0)), bytes16
                )

            return builder.extract_element(
                builder.call(psadbw, [load8(data_a, a_i), load8(data_b, b_i)]), ir.Constant(int32, 0)
            )
        total = ir.Constant(word, 0)
        for j in range(8):
            values = []
            for data, i, ty in ((data_a, a_i, signature.args[0]), (data_b, b_i, signature.args[2])):
                v = builder.load(builder.gep(data, [builder.add(i, ir.Constant(i.type, j))]))
                values.append(builder.sext(v, word) if ty.dtype.signed else builder.zext(v, word))
            diff = builder.sub(*values)
            negative = builder.icmp_signed("<", diff, ir.Constant(word, 0))
            total = builder.add(total, builder.select(negative, builder.neg(diff), diff))
        return total

    return sig, codegen


@numba.njit(inline="always", boundscheck=False)
def _key(cur_flat, ref_flat, shape, t, y0, x0, dy, dx, block, search, rank_table, n_rank):
    """``SAD * R + rank`` of one block and displacement, on the flat planes of :func:`pattern_search`
    (``shape`` = (C, Hp, Wp, Hr, Wr)); 8 columns at a time with :func:`_sad8`."""
    nc, hp, wp, rh, rw = shape
    s = 0
    for c in range(nc):
        for i in range(block):
            at_c = ((t * nc + c) * hp + y0 + i) * wp + x0
            at_r = ((t * nc + c) * rh + y0 + i + search + dy) * rw + x0 + search + dx
            for j in range(0, block - 7, 8):
                s += _sad8(cur_flat, at_c + j, ref_flat, at_r + j)
            for j in range(block - block % 8, block):
                s += abs(np.int64(cur_flat[at_c + j]) - np.int64(ref_flat[at_r + j]))
    return s * n_rank + rank_table[dy + search, dx + search]


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
    shape = (nc, hp, wp, refp.shape[2], refp.shape[3])
    cur_flat, ref_flat = cur.reshape(-1), refp.reshape(-1)
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
                best = _key(cur_flat, ref_flat, shape, t, y0, x0, 0, 0, block, search, rank_table, n_rank)
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
                            kk = _key(cur_flat, ref_flat, shape, t, y0, x0, qy, qx, block, search, rank_table, n_rank)
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


@numba.njit(inline="always")
def _unpack_keys(keys, order, vec_row, sad_row):
    """Best keys ``SAD * R + rank`` of a block row -> its vectors (Wb, 2) and SADs (Wb,)."""
    n_rank = order.shape[0]
    for bx in range(keys.shape[0]):
        k = keys[bx] % n_rank
        vec_row[bx, 0] = order[k, 0]
        vec_row[bx, 1] = order[k, 1]
        sad_row[bx] = keys[bx] // n_rank


@numba.njit(cache=True, boundscheck=False)
def full_search_packed(cur, refp, block, search, order):
    """:func:`full_search` for uint8 planes when ``block % 4 == 0`` and ``C * block^2 * 255 < 2^16``
    (luma 8x8 and 16x16, RGB 8x8): the same result, faster.

    Per block row and candidate, the absolute differences of the block's rows are summed per
    column in uint16 (a vectorisable loop over the whole row), then each block's columns are
    summed four at a time as the uint16 lanes of one uint64 word; the key ``SAD * R + rank`` is
    a branchless minimum.
    """
    nb, nc, hp, wp = cur.shape
    hb, wb = hp // block, wp // block
    n_rank = order.shape[0]
    words = block // 4
    vec = np.zeros((nb, hb, wb, 2), np.int64)
    sad = np.zeros((nb, hb, wb), np.int64)
    acc = np.zeros(wp, np.uint16)
    acc64 = acc.view(np.uint64)
    keys = np.empty(wb, np.int64)
    for t in range(nb):
        for by in range(hb):
            y0 = by * block
            keys[:] = 1 << 60
            for k in range(n_rank):
                dy = order[k, 0]
                dx = order[k, 1]
                acc[:] = 0
                for c in range(nc):
                    for i in range(block):
                        crow = cur[t, c, y0 + i]
                        rrow = refp[t, c, y0 + i + search + dy, search + dx : search + dx + wp]
                        for x in range(wp):
                            a = crow[x]
                            b = rrow[x]
                            acc[x] += np.uint16(max(a, b) - min(a, b))
                for bx in range(wb):
                    w = acc64[bx * words]
                    for q in range(1, words):
                        w += acc64[bx * words + q]
                    s = (w + (w >> 16) + (w >> 32) + (w >> 48)) & 0xFFFF
                    keys[bx] = min(keys[bx], np.int64(s) * n_rank + k)
            _unpack_keys(keys, order, vec[t, by], sad[t, by])
    return vec, sad


@intrinsic
def _sad32x8_add(typingctx, acc, acc_at, a, a_at, a_stride, b, b_at, b_stride):
    """``acc[acc_at : acc_at + 4] += sum_r psadbw(a[a_at + r a_stride :][:32], b[b_at + r b_stride :][:32])``
    over 8 rows r: uint64 ``acc``, flat uint8 ``a``, ``b``. ``vpsadbw`` sums the absolute differences
    of 8 consecutive bytes into one uint64 lane: one lane per 8 columns. Needs AVX2."""
    sig = types.void(acc, types.intp, a, types.intp, types.intp, b, types.intp, types.intp)

    def codegen(context, builder, signature, args):
        acc_arr, acc_i, a_arr, a_i, a_s, b_arr, b_i, b_s = args
        bytes32, lanes = ir.VectorType(ir.IntType(8), 32), ir.VectorType(ir.IntType(64), 4)
        psadbw = builder.module.declare_intrinsic(
            "llvm.x86.avx2.psad.bw", fnty=ir.FunctionType(lanes, [bytes32, bytes32])
        )
        data_a = context.make_array(signature.args[2])(context, builder, a_arr).data
        data_b = context.make_array(signature.args[5])(context, builder, b_arr).data
        total = None
        for r in range(8):
            at_a = builder.add(a_i, builder.mul(a_s, ir.Constant(a_s.type, r)))
            at_b = builder.add(b_i, builder.mul(b_s, ir.Constant(b_s.type, r)))
            va = builder.load(builder.bitcast(builder.gep(data_a, [at_a]), bytes32.as_pointer()), align=1)
            vb = builder.load(builder.bitcast(builder.gep(data_b, [at_b]), bytes32.as_pointer()), align=1)
            sad = builder.call(psadbw, [va, vb])
            total = sad if total is None else builder.add(total, sad)
        data_acc = context.make_array(signature.args[0])(context, builder, acc_arr).data
        where = builder.bitcast(builder.gep(data_acc, [acc_i]), lanes.as_pointer())
        builder.store(builder.add(builder.load(where, align=8), total), where, align=8)
        return context.get_dummy_value()

    return sig, codegen


@numba.njit(cache=True, boundscheck=False)
def full_search_psadbw(cur, refp, block, search, order):
    """:func:`full_search` for uint8 planes when ``block % 8 == 0`` on a CPU with AVX2 (see
    :data:`HAS_AVX2`): the same result. Per block row and candidate, 8 rows x 32 columns of
    absolute differences are summed per 8 columns by ``vpsadbw`` (the instruction codecs use for
    this), a block's 8-column sums are added, and the key ``SAD * R + rank`` is a branchless minimum.
    """
    nb, nc, hp, wp = cur.shape
    rh, rw = refp.shape[2], refp.shape[3]
    hb, wb = hp // block, wp // block
    n_rank = order.shape[0]
    groups = block // 8
    n32 = wp // 32
    vec = np.zeros((nb, hb, wb, 2), np.int64)
    sad = np.zeros((nb, hb, wb), np.int64)
    acc = np.zeros(wp // 8 + 4, np.uint64)  # one sum per 8 columns
    keys = np.empty(wb, np.int64)
    cur_flat, ref_flat = cur.reshape(-1), refp.reshape(-1)
    for t in range(nb):
        for by in range(hb):
            y0 = by * block
            keys[:] = 1 << 60
            for k in range(n_rank):
                dy = order[k, 0]
                dx = order[k, 1]
                acc[:] = 0
                for c in range(nc):
                    plane_c, plane_r = (t * nc + c) * hp, (t * nc + c) * rh
                    for i in range(0, block, 8):
                        at_c = (plane_c + y0 + i) * wp
                        at_r = (plane_r + y0 + i + search + dy) * rw + search + dx
                        for q in range(n32):
                            _sad32x8_add(acc, 4 * q, cur_flat, at_c + 32 * q, wp, ref_flat, at_r + 32 * q, rw)
                    for i in range(block):  # columns past the last multiple of 32
                        at_c = (plane_c + y0 + i) * wp
                        at_r = (plane_r + y0 + i + search + dy) * rw + search + dx
                        for x in range(32 * n32, wp):
                            a, b = np.int64(cur_flat[at_c + x]), np.int64(ref_flat[at_r + x])
                            acc[x // 8] += abs(a - b)
                for bx in range(wb):
                    s = acc[bx * groups]
                    for g in range(1, groups):
                        s += acc[bx * groups + g]
                    keys[bx] = min(keys[bx], np.int64(s) * n_rank + k)
            _unpack_keys(keys, order, vec[t, by], sad[t, by])
    return vec, sad


@numba.njit(cache=True, boundscheck=False)
def _replicate_border(out, top, left, h, w):
    """In place: fill ``out`` (B, C, Ph, Pw) around its ``h x w`` interior at (top, left)."""
    nb, nc, ph, pw = out.shape
    for b in range(nb):
        for c in range(nc):
            for y in range(top, top + h):
                row = out[b, c, y]
                for x in range(left):
                    row[x] = row[left]
                for x in range(left + w, pw):
                    row[x] = row[left + w - 1]
            for y in range(top):
                out[b, c, y] = out[b, c, top]
            for y in range(top + h, ph):
                out[b, c, y] = out[b, c, top + h - 1]


@numba.njit(inline="always")
def _round_half_even(v):
    """``np.rint`` of a float32 with ``|v| < 2^22`` (adding and removing 1.5 * 2^23 leaves the
    float32 rounding of the addition to do it); unlike ``rint`` it vectorises."""
    magic = np.float32(12582912.0)
    return (v + magic) - magic


@numba.njit(cache=True, boundscheck=False)
def to_planes(frames, luma, block, extra):
    """RGB float32 (B, 3, H, W) in [0, 1] -> uint8 matching planes (B, C, Hp + 2 e, Wp + 2 e):
    BT.601 luma (C = 1) or RGB (C = 3), ``round(255 v)`` clamped to 0..255 (the float32 arithmetic
    of :func:`motion.frame_planes`), replicate-padded to the block grid ``Hp x Wp`` plus ``e`` all round."""
    nb, _, h, w = frames.shape
    nc = 1 if luma else 3
    hp = (h + block - 1) // block * block
    wp = (w + block - 1) // block * block
    out = np.empty((nb, nc, hp + 2 * extra, wp + 2 * extra), np.uint8)
    kr, kg, kb = np.float32(0.299), np.float32(0.587), np.float32(0.114)
    scale, lo, hi = np.float32(255.0), np.float32(0.0), np.float32(255.0)
    for b in range(nb):
        for y in range(h):
            if luma:
                r, g, bl, orow = frames[b, 0, y], frames[b, 1, y], frames[b, 2, y], out[b, 0, extra + y, extra:]
                for x in range(w):
                    v = (kr * r[x] + kg * g[x] + kb * bl[x]) * scale
                    orow[x] = np.uint8(min(max(_round_half_even(v), lo), hi))
            else:
                for c in range(3):
                    src, orow = frames[b, c, y], out[b, c, extra + y, extra:]
                    for x in range(w):
                        orow[x] = np.uint8(min(max(_round_half_even(src[x] * scale), lo), hi))
    _replicate_border(out, extra, extra, h, w)
    return out


@numba.njit(cache=True, boundscheck=False)
def pad_planes(x, block, extra):
    """Integer planes (B, C, H, W) -> replicate-padded (B, C, Hp + 2 e, Wp + 2 e), same dtype."""
    nb, nc, h, w = x.shape
    hp = (h + block - 1) // block * block
    wp = (w + block - 1) // block * block
    out = np.empty((nb, nc, hp + 2 * extra, wp + 2 * extra), x.dtype)
    out[:, :, extra : extra + h, extra : extra + w] = x
    _replicate_border(out, extra, extra, h, w)
    return out


@numba.njit(cache=True, boundscheck=False)
def _code_strip(s, mft, vt, offset, qbits, shift):
    """In place on an int32 strip (4, Wp) of 4x4 blocks side by side: forward H.264 integer
    transform, quantisation (``mft``, ``vt``: the (4, 4) tables tiled along the strip),
    dequantisation and the inverse transform with its final ``(x + 32) >> 6``; the same integer
    arithmetic, in the same order, as :mod:`intdct` and :mod:`quant`. Each pass is one loop
    over the strip, so it vectorises."""
    nbx = s.shape[1] // 4
    s0, s1, s2, s3 = s[0], s[1], s[2], s[3]
    for x in range(s.shape[1]):  # forward, columns (exact integer arithmetic: pass order is free)
        a0, a1, a2, a3 = s0[x], s1[x], s2[x], s3[x]
        s03, d03, s12, d12 = a0 + a3, a0 - a3, a1 + a2, a1 - a2
        s0[x], s1[x], s2[x], s3[x] = s03 + s12, 2 * d03 + d12, s03 - s12, d03 - 2 * d12
    for i in range(4):  # forward, rows
        row = s[i]
        for bx in range(nbx):
            x = 4 * bx
            a0, a1, a2, a3 = row[x], row[x + 1], row[x + 2], row[x + 3]
            s03, d03, s12, d12 = a0 + a3, a0 - a3, a1 + a2, a1 - a2
            row[x], row[x + 1], row[x + 2], row[x + 3] = s03 + s12, 2 * d03 + d12, s03 - s12, d03 - 2 * d12
    for i in range(4):  # quantise (sign kept, magnitude rounded down with the offset), dequantise
        row, mrow, vrow = s[i], mft[i], vt[i]
        for x in range(s.shape[1]):
            y = row[x]
            q = (abs(y) * mrow[x] + offset) >> qbits
            row[x] = ((q if y >= 0 else -q) * vrow[x]) << shift
    for i in range(4):  # inverse, rows first (the standard's order: the >> 1 make it matter)
        row = s[i]
        for bx in range(nbx):
            x = 4 * bx
            d0, d1, d2, d3 = row[x], row[x + 1], row[x + 2], row[x + 3]
            z0, z1, z2, z3 = d0 + d2, d0 - d2, (d1 >> 1) - d3, d1 + (d3 >> 1)
            row[x], row[x + 1], row[x + 2], row[x + 3] = z0 + z3, z1 + z2, z1 - z2, z0 - z3
    for x in range(s.shape[1]):  # inverse, columns, then (x + 32) >> 6
        d0, d1, d2, d3 = s0[x], s1[x], s2[x], s3[x]
        z0, z1, z2, z3 = d0 + d2, d0 - d2, (d1 >> 1) - d3, d1 + (d3 >> 1)
        s0[x], s1[x] = (z0 + z3 + 32) >> 6, (z1 + z2 + 32) >> 6
        s2[x], s3[x] = (z1 - z2 + 32) >> 6, (z0 - z3 + 32) >> 6


@numba.njit(cache=True)
def _tiled_tables(mf, v, wp):
    mft = np.empty((4, wp), np.int32)
    vt = np.empty((4, wp), np.int32)
    for i in range(4):
        for x in range(wp):
            mft[i, x] = mf[i, x & 3]
            vt[i, x] = v[i, x & 3]
    return mft, vt


@numba.njit(cache=True, boundscheck=False)
def code_residual_4x4(x, mf, v, qbits, offset, shift):
    """H.264 4x4 residual coding of int32 planes (B, H, W), H and W multiples of 4; mf, v int64
    (4, 4) tables for this QP; shift = QP // 6. Returns int32 (B, H, W)."""
    nb, h, w = x.shape
    out = np.empty_like(x)
    s = np.empty((4, w), np.int32)
    mft, vt = _tiled_tables(mf, v, w)
    for b in range(nb):
        for y0 in range(0, h, 4):
            s[:] = x[b, y0 : y0 + 4]
            _code_strip(s, mft, vt, np.int32(offset), np.int32(qbits), np.int32(shift))
            out[b, y0 : y0 + 4] = s
    return out


@numba.njit(cache=True, boundscheck=False)
def rebuild_4x4(cur, pred, mf, v, qbits, offset, shift, out):
    """The whole residual step of the rebuild, fused: float32 (B, C, H, W) frames and predictions
    in [0, 1] -> out = clip(pred + code(round(255 (cur - pred))) / 255, 0, 1), float32 (B, C, H, W)
    (returned). Blocks past the frame edge read the edge (replicate padding), as the torch path pads."""
    nb, nc, h, w = cur.shape
    wp = (w + 3) // 4 * 4
    s = np.empty((4, wp), np.int32)
    mft, vt = _tiled_tables(mf, v, wp)
    scale = np.float32(255.0)
    for b in range(nb):
        for c in range(nc):
            for y0 in range(0, h, 4):
                for i in range(4):
                    yy = min(y0 + i, h - 1)
                    crow, prow, srow = cur[b, c, yy], pred[b, c, yy], s[i]
                    for x in range(w):
                        r = _round_half_even((crow[x] - prow[x]) * scale)
                        srow[x] = np.int32(min(max(r, np.float32(-255.0)), np.float32(255.0)))
                    for x in range(w, wp):
                        srow[x] = srow[w - 1]
                _code_strip(s, mft, vt, np.int32(offset), np.int32(qbits), np.int32(shift))
                for i in range(min(4, h - y0)):
                    prow, orow, srow = pred[b, c, y0 + i], out[b, c, y0 + i], s[i]
                    for x in range(w):
                        val = prow[x] + np.float32(srow[x]) / scale
                        orow[x] = min(max(val, np.float32(0.0)), np.float32(1.0))
    return out


@numba.njit(inline="always", boundscheck=False)
def _copy_block(out, ref, b, y0, x0, sy, sx, rows, cols):
    """out[b, :, y0:y0+rows, x0:x0+cols] = ref[b, :, sy:sy+rows, sx:sx+cols], reads clamped to the frame."""
    nc, h, w = ref.shape[1], ref.shape[2], ref.shape[3]
    if sy >= 0 and sx >= 0 and sy + rows <= h and sx + cols <= w:
        for c in range(nc):
            for i in range(rows):
                for j in range(cols):
                    out[b, c, y0 + i, x0 + j] = ref[b, c, sy + i, sx + j]
    else:
        for c in range(nc):
            for i in range(rows):
                yy = min(max(sy + i, 0), h - 1)
                for j in range(cols):
                    out[b, c, y0 + i, x0 + j] = ref[b, c, yy, min(max(sx + j, 0), w - 1)]


@numba.njit(cache=True, boundscheck=False)
def compensate(ref_a, ref_b, vec_a, vec_b, pick_b, block, out):
    """Block copy from two references: float32 (B, C, H, W) ``ref_a`` / ``ref_b``, vectors int64
    (B, Hb, Wb, 2) into each, ``pick_b`` bool (B, Hb, Wb): which reference each block copies.
    Reads outside the frame take the nearest edge pixel (replicate padding). For one reference,
    pass it twice with ``pick_b`` all False. Writes and returns ``out`` float32 (B, C, H, W)."""
    nb, _nc, h, w = ref_a.shape
    hb, wb = vec_a.shape[1], vec_a.shape[2]
    for b in range(nb):
        for by in range(hb):
            for bx in range(wb):
                y0, x0 = by * block, bx * block
                rows, cols = min(block, h - y0), min(block, w - x0)
                if pick_b[b, by, bx]:
                    dy, dx = vec_b[b, by, bx, 0], vec_b[b, by, bx, 1]
                    _copy_block(out, ref_b, b, y0, x0, y0 + dy, x0 + dx, rows, cols)
                else:
                    dy, dx = vec_a[b, by, bx, 0], vec_a[b, by, bx, 1]
                    _copy_block(out, ref_a, b, y0, x0, y0 + dy, x0 + dx, rows, cols)
    return out


# --------------------------------------------------------------------------------------------
# The uint8 path: decoded frames as they come, (B, H, W, 3) RGB uint8, never converted to float.
# Each kernel equals its float32 counterpart followed by the writer's rounding (``round(255 v)``):
# the float path's values are ``v / 255`` of these integers, so its residual ``round(255 (cur -
# pred))`` is the integer difference and its output ``clip(pred + r / 255, 0, 1)`` rounds back to
# ``clip(pred + r, 0, 255)`` (float32 errors of about 1e-4 levels, far from a rounding boundary).
# --------------------------------------------------------------------------------------------


@numba.njit(cache=True, boundscheck=False)
def to_planes_u8(frames, luma, block, extra, lut):
    """:func:`to_planes` of uint8 RGB frames (B, H, W, 3): the same planes, bit for bit. ``lut``:
    float32 (256,), the float value of each level (``vidshield.video.to_float``), so the luma is
    computed from the very float32 values the float path sees."""
    nb, h, w, _ = frames.shape
    nc = 1 if luma else 3
    hp = (h + block - 1) // block * block
    wp = (w + block - 1) // block * block
    out = np.empty((nb, nc, hp + 2 * extra, wp + 2 * extra), np.uint8)
    kr, kg, kb = np.float32(0.299), np.float32(0.587), np.float32(0.114)
    scale, lo, hi = np.float32(255.0), np.float32(0.0), np.float32(255.0)
    for b in range(nb):
        for y in range(h):
            src = frames[b, y]
            if luma:
                orow = out[b, 0, extra + y, extra:]
                for x in range(w):
                    v = (kr * lut[src[x, 0]] + kg * lut[src[x, 1]] + kb * lut[src[x, 2]]) * scale
                    orow[x] = np.uint8(min(max(_round_half_even(v), lo), hi))
            else:
                for c in range(3):
                    orow = out[b, c, extra + y, extra:]
                    for x in range(w):
                        orow[x] = np.uint8(min(max(_round_half_even(lut[src[x, c]] * scale), lo), hi))
    _replicate_border(out, extra, extra, h, w)
    return out


@numba.njit(inline="always", boundscheck=False)
def _copy_block_u8(out, ref, b, y0, x0, sy, sx, rows, cols):
    """:func:`_copy_block` on (B, H, W, 3) frames: a block row is ``3 * cols`` contiguous bytes."""
    h, w = ref.shape[1], ref.shape[2]
    if sy >= 0 and sx >= 0 and sy + rows <= h and sx + cols <= w:
        for i in range(rows):
            orow, rrow = out[b, y0 + i], ref[b, sy + i]
            for j in range(cols):
                for c in range(3):
                    orow[x0 + j, c] = rrow[sx + j, c]
    else:
        for i in range(rows):
            rrow = ref[b, min(max(sy + i, 0), h - 1)]
            orow = out[b, y0 + i]
            for j in range(cols):
                xx = min(max(sx + j, 0), w - 1)
                for c in range(3):
                    orow[x0 + j, c] = rrow[xx, c]


@numba.njit(cache=True, boundscheck=False)
def compensate_u8(ref_a, ref_b, vec_a, vec_b, pick_b, block, out):
    """:func:`compensate` on uint8 (B, H, W, 3) frames. Writes and returns ``out``."""
    nb, h, w, _ = ref_a.shape
    hb, wb = vec_a.shape[1], vec_a.shape[2]
    for b in range(nb):
        for by in range(hb):
            for bx in range(wb):
                y0, x0 = by * block, bx * block
                rows, cols = min(block, h - y0), min(block, w - x0)
                if pick_b[b, by, bx]:
                    dy, dx = vec_b[b, by, bx, 0], vec_b[b, by, bx, 1]
                    _copy_block_u8(out, ref_b, b, y0, x0, y0 + dy, x0 + dx, rows, cols)
                else:
                    dy, dx = vec_a[b, by, bx, 0], vec_a[b, by, bx, 1]
                    _copy_block_u8(out, ref_a, b, y0, x0, y0 + dy, x0 + dx, rows, cols)
    return out


@numba.njit(cache=True, boundscheck=False)
def rebuild_4x4_u8(cur, pred, mf, v, qbits, offset, shift, out):
    """:func:`rebuild_4x4` on uint8 (B, H, W, 3) frames: ``out = clip(pred + code(cur - pred), 0, 255)``,
    equal to the float kernel's output rounded to 8 bits. The channels of a strip of four rows
    are gathered into planar int32 strips, coded, and written back interleaved."""
    nb, h, w, _ = cur.shape
    wp = (w + 3) // 4 * 4
    strips = np.empty((3, 4, wp), np.int32)
    mft, vt = _tiled_tables(mf, v, wp)
    for b in range(nb):
        for y0 in range(0, h, 4):
            for i in range(4):
                yy = min(y0 + i, h - 1)
                crow, prow = cur[b, yy], pred[b, yy]
                for x in range(w):
                    for c in range(3):
                        strips[c, i, x] = np.int32(crow[x, c]) - np.int32(prow[x, c])
                for c in range(3):
                    for x in range(w, wp):
                        strips[c, i, x] = strips[c, i, w - 1]
            for c in range(3):
                _code_strip(strips[c], mft, vt, np.int32(offset), np.int32(qbits), np.int32(shift))
            for i in range(min(4, h - y0)):
                prow, orow = pred[b, y0 + i], out[b, y0 + i]
                for x in range(w):
                    for c in range(3):
                        orow[x, c] = np.uint8(min(max(np.int32(prow[x, c]) + strips[c, i, x], 0), 255))
    return out

"""H.264 scalar quantisation of integer-transform coefficients, and frame-level residual coding.

Quantisation (encoder side, JM reference software / Richardson ch. 7)::

    level = sign(Y) * ((|Y| * MF[QP % 6, class] + f) >> qbits)
    qbits = 15 + QP // 6   (4x4)        16 + 6 + QP // 6   (8x8; + 6 because forward_int_dct's
                                                            8x8 output is 64 x the JM butterfly's)
    f     = 2^qbits / 3 (intra)  or  2^qbits / 6 (inter), rounded down

Dequantisation (decoder side, normative, ITU-T H.264 8.5.12.1 / 8.5.13.1 with flat scaling
lists)::

    4x4:  w = level * V[QP % 6, class] << (QP // 6)
    8x8:  w = level * 16 * V8[QP % 6, class], then << (QP // 6 - 6) when QP >= 36,
          else (+ 2^(5 - QP // 6)) >> (6 - QP // 6)

Position classes: 4x4 ``a`` (row and column even), ``b`` (both odd), ``c`` (mixed); 8x8 six
classes (see ``_CLASS_8x8``). The quantiser step doubles every 6 QP (Qstep(0) = 0.625).
``inverse_int_dct(dequantize(quantize(forward_int_dct(X), qp), qp))`` (see :mod:`intdct`) reconstructs ``X`` with
the standard's scaling: exact up to +-1 at QP 0, error growing with the step.

QP range: 0..51 (as H.264 for 8-bit video).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from vidshield.defenses.temporal.intdct import forward_planar, inverse_planar
from vidshield.defenses.temporal.motion import _numba_kernels

__all__ = ["quantize", "dequantize", "quant_step", "code_residual", "MAX_QP"]

MAX_QP = 51

# 4x4 tables, columns (a, b, c) = (both even, both odd, mixed).
_MF_4x4 = torch.tensor(
    [
        [13107, 5243, 8066],
        [11916, 4660, 7490],
        [10082, 4194, 6554],
        [9362, 3647, 5825],
        [8192, 3355, 5243],
        [7282, 2893, 4559],
    ],
    dtype=torch.int64,
)
_V_4x4 = torch.tensor(
    [[10, 16, 13], [11, 18, 14], [13, 20, 16], [14, 23, 18], [16, 25, 20], [18, 29, 23]], dtype=torch.int64
)
# 8x8 tables (JM quant_coef8 / H.264 normAdjust8x8), columns = classes 0..5 of _CLASS_8x8.
_MF_8x8 = torch.tensor(
    [
        [13107, 11428, 20972, 12222, 16777, 15481],
        [11916, 10826, 19174, 11058, 14980, 14290],
        [10082, 8943, 15978, 9675, 12710, 11985],
        [9362, 8228, 14913, 8931, 11984, 11259],
        [8192, 7346, 13159, 7740, 10486, 9777],
        [7282, 6428, 11570, 6830, 9118, 8640],
    ],
    dtype=torch.int64,
)
_V_8x8 = torch.tensor(
    [
        [20, 18, 32, 19, 25, 24],
        [22, 19, 35, 21, 28, 26],
        [26, 23, 42, 24, 33, 31],
        [28, 25, 45, 26, 35, 33],
        [32, 28, 51, 30, 40, 38],
        [36, 32, 58, 34, 46, 43],
    ],
    dtype=torch.int64,
)


def _class_4x4() -> torch.Tensor:
    i = torch.arange(4)
    ri, cj = (i[:, None] % 2), (i[None, :] % 2)
    return torch.where((ri == 0) & (cj == 0), 0, torch.where((ri == 1) & (cj == 1), 1, 2))


def _class_8x8() -> torch.Tensor:
    """H.264 8.5.9: class 0 (i%4==0, j%4==0), 1 (i, j odd), 2 (i%4==2, j%4==2),
    3 (one %4==0, other odd), 4 (one %4==0, other %4==2), 5 (others: one %4==2, other odd)."""
    i = torch.arange(8)
    a, b = i[:, None].expand(8, 8), i[None, :].expand(8, 8)
    cls = torch.full((8, 8), 5, dtype=torch.int64)
    cls[((a % 4 == 0) & (b % 2 == 1)) | ((a % 2 == 1) & (b % 4 == 0))] = 3
    cls[((a % 4 == 0) & (b % 4 == 2)) | ((a % 4 == 2) & (b % 4 == 0))] = 4
    cls[(a % 4 == 0) & (b % 4 == 0)] = 0
    cls[(a % 2 == 1) & (b % 2 == 1)] = 1
    cls[(a % 4 == 2) & (b % 4 == 2)] = 2
    return cls


_CLASS_4x4 = _class_4x4()
_CLASS_8x8 = _class_8x8()


def _check_qp(qp: int) -> int:
    if isinstance(qp, bool) or not isinstance(qp, int) or not 0 <= qp <= MAX_QP:
        raise ValueError(f"qp must be an int in [0, {MAX_QP}], got {qp!r}")
    return qp


def _check_size(coeffs: torch.Tensor, size: int, name: str) -> None:
    if size not in (4, 8):
        raise ValueError(f"size must be 4 or 8, got {size!r}")
    if not isinstance(coeffs, torch.Tensor) or coeffs.dtype not in (torch.int32, torch.int64):
        raise ValueError(f"{name} must be an int32/int64 tensor (..., {size}, {size})")
    if coeffs.dim() < 2 or tuple(coeffs.shape[-2:]) != (size, size):
        raise ValueError(f"{name} must have shape (..., {size}, {size}), got {tuple(coeffs.shape)}")


def _table(size: int, which: str, qp: int, device: torch.device) -> torch.Tensor:
    cls = _CLASS_4x4 if size == 4 else _CLASS_8x8
    tab = {("mf", 4): _MF_4x4, ("v", 4): _V_4x4, ("mf", 8): _MF_8x8, ("v", 8): _V_8x8}[(which, size)]
    return tab[qp % 6][cls].to(device)


def quantize(coeffs: torch.Tensor, qp: int, *, size: int = 4, intra: bool = False) -> torch.Tensor:
    """Quantise forward-transform coefficients to integer levels.

    Args:
        coeffs: int32/int64 ``(..., size, size)`` from :func:`forward_int_dct`.
        qp: quantisation parameter in [0, 51].
        size: 4 or 8 (the transform size).
        intra: rounding offset ``2^qbits / 3`` (intra) instead of ``2^qbits / 6`` (inter, the
            larger dead zone an encoder uses for motion-compensated residuals).

    Returns:
        int64 levels, same shape.
    """
    _check_size(coeffs, size, "coeffs")
    y = coeffs.to(torch.int64)
    return _quantize(y, _table(size, "mf", _check_qp(qp), y.device), qp, size, intra)


def _quantize(y: torch.Tensor, mf: torch.Tensor, qp: int, size: int, intra: bool) -> torch.Tensor:
    qbits = (15 if size == 4 else 22) + qp // 6
    offset = (1 << qbits) // (3 if intra else 6)
    return torch.sign(y) * ((y.abs() * mf + offset) >> qbits)


def dequantize(levels: torch.Tensor, qp: int, *, size: int = 4) -> torch.Tensor:
    """Rescale levels for :func:`inverse_int_dct` (the normative H.264 scaling, flat matrices).

    Args:
        levels: int32/int64 ``(..., size, size)``.
        qp: quantisation parameter in [0, 51].
        size: 4 or 8.

    Returns:
        int64 dequantised coefficients, same shape.
    """
    _check_size(levels, size, "levels")
    c = levels.to(torch.int64)
    return _dequantize(c, _table(size, "v", _check_qp(qp), c.device), qp, size)


def _dequantize(c: torch.Tensor, v: torch.Tensor, qp: int, size: int) -> torch.Tensor:
    if size == 4:
        return (c * v) << (qp // 6)
    scaled = c * 16 * v
    if qp >= 36:
        return scaled << (qp // 6 - 6)
    shift = 6 - qp // 6
    return (scaled + (1 << (shift - 1))) >> shift


def quant_step(qp: int) -> float:
    """The nominal H.264 quantiser step ``Qstep = 0.625 * 2^(QP / 6)`` (doubles every 6 QP)."""
    return 0.625 * 2.0 ** (_check_qp(qp) / 6.0)


def quant_tables_4x4(qp: int, *, intra: bool = False):
    """numpy ``(mf (4, 4), v (4, 4), qbits, offset)`` of the 4x4 quantiser at ``qp`` (for the kernels)."""
    qbits = 15 + qp // 6
    return (
        _table(4, "mf", qp, torch.device("cpu")).numpy(),
        _table(4, "v", qp, torch.device("cpu")).numpy(),
        qbits,
        (1 << qbits) // (3 if intra else 6),
    )


def code_residual(residual: torch.Tensor, qp: int, *, size: int = 4, intra: bool = False) -> torch.Tensor:
    """Transform, quantise, dequantise and inverse-transform a residual plane, as a decoder sees it.

    The plane is tiled into ``size x size`` blocks; a size that is not a multiple of the block
    is padded by replication and the result cropped back.

    Args:
        residual: integer ``(..., H, W)`` in [-255, 255] (polluted minus prediction).
        qp: quantisation parameter in [0, 51]; larger removes more.
        size: transform size, 4 (baseline H.264) or 8 (High profile 8x8 transform).
        intra: the quantiser's rounding offset (see :func:`quantize`).

    Returns:
        int64 ``(..., H, W)``: the reconstructed residual.
    """
    if not isinstance(residual, torch.Tensor) or residual.is_floating_point() or residual.dtype == torch.bool:
        raise ValueError("residual must be an integer tensor (..., H, W)")
    if residual.dim() < 2 or residual.shape[-1] == 0 or residual.shape[-2] == 0:
        raise ValueError(f"residual must have shape (..., H, W), got {tuple(residual.shape)}")
    if size not in (4, 8):
        raise ValueError(f"size must be 4 or 8, got {size!r}")
    _check_qp(qp)
    if residual.numel() and int(residual.abs().max()) > 255:
        raise ValueError("residual values must lie in [-255, 255] (8-bit sample differences)")
    lead, (h, w) = residual.shape[:-2], residual.shape[-2:]
    ph, pw = (-h) % size, (-w) % size
    # int32 is exact here: |residual| <= 255 keeps every 4x4 intermediate below 2^31; the 8x8
    # quantiser product needs int64 and gets it.
    x = residual.reshape(-1, 1, h, w).to(torch.int32)
    if ph or pw:
        x = F.pad(x.to(torch.float32), (0, pw, 0, ph), mode="replicate").to(torch.int32)
    hb, wb = (h + ph) // size, (w + pw) // size
    kernels = _numba_kernels()
    if size == 4 and kernels is not None and x.device.type == "cpu":
        # fused numba kernel: the same integer arithmetic, block by block (tested to be bit-identical)
        mf, v, qbits, offset = quant_tables_4x4(qp, intra=intra)
        rec = kernels.code_residual_4x4(x[:, 0].numpy(), mf, v, qbits, offset, qp // 6)
        return torch.from_numpy(rec)[:, :h, :w].reshape(*lead, h, w).to(torch.int64)
    # planar layout (size, size, B, hb, wb): each butterfly term is one contiguous tensor
    planar = x.reshape(-1, hb, size, wb, size).permute(2, 4, 0, 1, 3).contiguous()
    wide = torch.int32 if size == 4 else torch.int64
    mf = _table(size, "mf", qp, x.device).to(wide).view(size, size, 1, 1, 1)
    v = _table(size, "v", qp, x.device).to(wide).view(size, size, 1, 1, 1)
    levels = _quantize(forward_planar(planar).to(wide), mf, qp, size, intra)
    rec = inverse_planar(_dequantize(levels, v, qp, size).to(torch.int32))
    rec = rec.permute(2, 3, 0, 4, 1).reshape(-1, hb * size, wb * size)[:, :h, :w]
    return rec.reshape(*lead, h, w).to(torch.int64)

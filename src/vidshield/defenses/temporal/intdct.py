"""H.264 integer core transforms (4x4 and 8x8), exact integer arithmetic in torch.

Sources: ITU-T H.264 (04/2017) clause 8.5.12.2 (4x4 inverse) and 8.5.13.2 (8x8 inverse, High
profile); the forward transforms are the encoder-side matrices of the JM reference software
(transform8x8.c) and of Richardson, "The H.264 Advanced Video Compression Standard", ch. 7.

* 4x4 forward: ``Y = Cf X Cf^T`` with ``Cf = [[1,1,1,1],[2,1,-1,-2],[1,-1,-1,1],[1,-2,2,-1]]``
  (no shifts, so the butterfly is exactly the matrix product).
* 8x8 forward: ``Y = C8 X C8^T`` with the integer matrix ``C8`` (rows ``8 8 8 8 8 8 8 8``,
  ``12 10 6 3 -3 -6 -10 -12``, ...). Encoders use ``C8 / 8`` with ``>> 1`` / ``>> 2`` shifts;
  here the full integer product is kept (no rounding at all), so its output is 64 times the
  JM butterfly's and :mod:`quant` adds 6 to the 8x8 ``qbits`` to compensate.
* Inverses: the standard's butterflies, including the final ``(x + 32) >> 6``. They invert the
  forward transforms only together with the dequantisation scaling of :mod:`quant` (the
  transforms are not orthonormal: the norm correction lives in the MF / V tables).

All functions take integer tensors ``(..., n, n)`` (int32 or int64), return int64 of the same
shape, and never modify their input.
"""

from __future__ import annotations

import torch

__all__ = ["forward_int_dct", "inverse_int_dct", "forward_planar", "inverse_planar", "FORWARD_4x4", "FORWARD_8x8"]

FORWARD_4x4 = torch.tensor([[1, 1, 1, 1], [2, 1, -1, -2], [1, -1, -1, 1], [1, -2, 2, -1]], dtype=torch.int64)
FORWARD_8x8 = torch.tensor(
    [
        [8, 8, 8, 8, 8, 8, 8, 8],
        [12, 10, 6, 3, -3, -6, -10, -12],
        [8, 4, -4, -8, -8, -4, 4, 8],
        [10, -3, -12, -6, 6, 12, 3, -10],
        [8, -8, -8, 8, 8, -8, -8, 8],
        [6, -12, 3, 10, -10, -3, 12, -6],
        [4, -8, 8, -4, -4, 8, -8, 4],
        [3, -6, 10, -12, 12, -10, 6, -3],
    ],
    dtype=torch.int64,
)


def _check_blocks(x: torch.Tensor, name: str) -> int:
    if not isinstance(x, torch.Tensor) or x.dtype not in (torch.int32, torch.int64):
        raise ValueError(
            f"{name} must be an int32/int64 tensor (..., n, n) with n = 4 or 8, got {getattr(x, 'dtype', type(x))}"
        )
    if x.dim() < 2 or x.shape[-1] != x.shape[-2] or x.shape[-1] not in (4, 8):
        raise ValueError(f"{name} must have shape (..., 4, 4) or (..., 8, 8), got {tuple(x.shape)}")
    return x.shape[-1]


def _fwd4_1d(x: torch.Tensor, dim: int) -> torch.Tensor:
    """4-point forward butterfly along ``dim`` (exactly ``Cf @ x`` along that dim)."""
    x0, x1, x2, x3 = x.unbind(dim)
    s03, d03, s12, d12 = x0 + x3, x0 - x3, x1 + x2, x1 - x2
    return torch.stack((s03 + s12, 2 * d03 + d12, s03 - s12, d03 - 2 * d12), dim=dim)


def _fwd8_1d(x: torch.Tensor, dim: int) -> torch.Tensor:
    """8-point forward butterfly along ``dim`` (exactly ``C8 @ x`` along that dim, all integers)."""
    x0, x1, x2, x3, x4, x5, x6, x7 = x.unbind(dim)
    a0, a1, a2, a3 = x0 + x7, x1 + x6, x2 + x5, x3 + x4
    a4, a5, a6, a7 = x0 - x7, x1 - x6, x2 - x5, x3 - x4
    b0, b1, b2, b3 = a0 + a3, a1 + a2, a0 - a3, a1 - a2
    y0 = 8 * (b0 + b1)
    y4 = 8 * (b0 - b1)
    y2 = 8 * b2 + 4 * b3
    y6 = 4 * b2 - 8 * b3
    y1 = 12 * a4 + 10 * a5 + 6 * a6 + 3 * a7
    y3 = 10 * a4 - 3 * a5 - 12 * a6 - 6 * a7
    y5 = 6 * a4 - 12 * a5 + 3 * a6 + 10 * a7
    y7 = 3 * a4 - 6 * a5 + 10 * a6 - 12 * a7
    return torch.stack((y0, y1, y2, y3, y4, y5, y6, y7), dim=dim)


def _inv4_1d(d: torch.Tensor, dim: int) -> torch.Tensor:
    """H.264 4-point inverse butterfly (8.5.12.2) along ``dim``, no final rounding."""
    d0, d1, d2, d3 = d.unbind(dim)
    z0, z1 = d0 + d2, d0 - d2
    z2, z3 = (d1 >> 1) - d3, d1 + (d3 >> 1)
    return torch.stack((z0 + z3, z1 + z2, z1 - z2, z0 - z3), dim=dim)


def _inv8_1d(d: torch.Tensor, dim: int) -> torch.Tensor:
    """H.264 8-point inverse butterfly (8.5.13.2) along ``dim``, no final rounding."""
    d0, d1, d2, d3, d4, d5, d6, d7 = d.unbind(dim)
    e0, e1 = d0 + d4, d0 - d4
    e2, e3 = (d2 >> 1) - d6, d2 + (d6 >> 1)
    f0, f1, f2, f3 = e0 + e3, e1 + e2, e1 - e2, e0 - e3
    g1 = -d3 + d5 - d7 - (d7 >> 1)
    g3 = d1 + d7 - d3 - (d3 >> 1)
    g5 = -d1 + d7 + d5 + (d5 >> 1)
    g7 = d3 + d5 + d1 + (d1 >> 1)
    h1, h3, h5, h7 = g1 + (g7 >> 2), g3 + (g5 >> 2), (g3 >> 2) - g5, g7 - (g1 >> 2)
    return torch.stack((f0 + h7, f1 + h5, f2 + h3, f3 + h1, f3 - h1, f2 - h3, f1 - h5, f0 - h7), dim=dim)


def forward_int_dct(blocks: torch.Tensor) -> torch.Tensor:
    """Forward integer transform ``Y = C X C^T`` of 4x4 or 8x8 blocks.

    Args:
        blocks: int32/int64 ``(..., n, n)``, n = 4 or 8 (residual samples, e.g. in [-255, 255]).

    Returns:
        int64 ``(..., n, n)`` coefficients (unscaled: the norm correction is in :mod:`quant`).
    """
    _check_blocks(blocks, "blocks")
    planar = blocks.to(torch.int64).movedim((-2, -1), (0, 1)).contiguous()
    return forward_planar(planar).movedim((0, 1), (-2, -1))


def inverse_int_dct(coeffs: torch.Tensor) -> torch.Tensor:
    """H.264 inverse integer transform of dequantised 4x4 or 8x8 coefficients.

    Row butterflies, then column butterflies, then ``(x + 32) >> 6`` (the standard's order).

    Args:
        coeffs: int32/int64 ``(..., n, n)``, as produced by :func:`quant.dequantize`.

    Returns:
        int64 ``(..., n, n)`` residual samples.
    """
    _check_blocks(coeffs, "coeffs")
    planar = coeffs.to(torch.int64).movedim((-2, -1), (0, 1)).contiguous()
    return inverse_planar(planar).movedim((0, 1), (-2, -1))


def forward_planar(x: torch.Tensor) -> torch.Tensor:
    """:func:`forward_int_dct` on the planar layout ``(n, n, ...)`` (block row, block column
    first), where every butterfly term is one large contiguous tensor: the fast path used by
    :func:`quant.code_residual`. No input checks; keeps the integer dtype (int32 is exact for
    inputs in [-255, 255])."""
    one_d = _fwd4_1d if x.shape[0] == 4 else _fwd8_1d
    return one_d(one_d(x, 1), 0)  # rows (X C^T), then columns (C ...)


def inverse_planar(w: torch.Tensor) -> torch.Tensor:
    """:func:`inverse_int_dct` on the planar layout ``(n, n, ...)``; no input checks."""
    one_d = _inv4_1d if w.shape[0] == 4 else _inv8_1d
    return (one_d(one_d(w, 1), 0) + 32) >> 6

"""H.264 integer transform and quantisation: hand-computed values, exact relations, scaling."""

import pytest
import torch

from vidshield.defenses.temporal import (
    code_residual,
    dequantize,
    forward_int_dct,
    inverse_int_dct,
    quant_step,
    quantize,
)
from vidshield.defenses.temporal.intdct import FORWARD_4x4, FORWARD_8x8


def test_forward_4x4_hand_computed():
    x = torch.tensor([[1, 2, 3, 4], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
    # first row of X times Cf^T: (1+2+3+4, 2*1+2-3-2*4, 1-2-3+4, 1-2*2+2*3-4) = (10, -7, 0, -1);
    # Cf's first column is (1, 2, 1, 1), so Y = outer((1, 2, 1, 1), that row)
    row = torch.tensor([10, -7, 0, -1])
    expected = torch.outer(torch.tensor([1, 2, 1, 1]), row)
    assert torch.equal(forward_int_dct(x), expected)
    assert forward_int_dct(x).dtype == torch.int64


@pytest.mark.parametrize("n, matrix", [(4, FORWARD_4x4), (8, FORWARD_8x8)])
def test_forward_is_the_matrix_product(rng, n, matrix):
    x = torch.randint(-255, 256, (50, n, n), generator=rng)
    assert torch.equal(forward_int_dct(x), matrix @ x @ matrix.T)


@pytest.mark.parametrize("n", [4, 8])
def test_inverse_of_dc_only(n):
    for d in (64, 640, 100, -100):
        coeffs = torch.zeros(n, n, dtype=torch.int64)
        coeffs[0, 0] = d
        assert torch.equal(inverse_int_dct(coeffs), torch.full((n, n), (d + 32) >> 6))


def test_inverse_4x4_exact_with_the_standard_scaling(rng):
    # X = Ci^T (S * Y) Ci exactly, with S = s s^T, s = (1/4, 1/5, 1/4, 1/5): for X a multiple of
    # 100, W = 64 S Y is an integer whose odd-index rows/columns are even, so the butterfly's
    # >> 1 shifts are exact and (. + 32) >> 6 returns X exactly.
    x = torch.randint(-20, 21, (100, 4, 4), generator=rng) * 100
    s = torch.tensor([1 / 4, 1 / 5, 1 / 4, 1 / 5], dtype=torch.float64)
    w = (forward_int_dct(x).double() * torch.outer(s, s) * 64).round().to(torch.int64)
    assert torch.equal(inverse_int_dct(w), x)


@pytest.mark.parametrize("n", [4, 8])
def test_round_trip_at_qp0_is_within_one(rng, n):
    x = torch.randint(-255, 256, (500, n, n), generator=rng)
    rec = inverse_int_dct(dequantize(quantize(forward_int_dct(x), 0, size=n, intra=True), 0, size=n))
    err = (rec - x).abs()
    assert int(err.max()) <= 1
    assert float(err.float().mean()) < 0.05


@pytest.mark.parametrize("n", [4, 8])
def test_error_grows_with_qp(rng, n):
    x = torch.randint(-255, 256, (300, n, n), generator=rng)
    errs = []
    for qp in (0, 12, 24, 36):
        rec = inverse_int_dct(dequantize(quantize(forward_int_dct(x), qp, size=n), qp, size=n))
        errs.append(float((rec - x).abs().float().mean()))
    assert errs == sorted(errs) and errs[-1] > 5 * errs[1]


@pytest.mark.parametrize("n", [4, 8])
def test_step_doubles_every_6_qp(rng, n):
    levels = torch.randint(-50, 51, (20, n, n), generator=rng)
    for qp in range(6, 52):
        hi, lo = dequantize(levels, qp, size=n), 2 * dequantize(levels, qp - 6, size=n)
        if n == 4 or qp - 6 >= 36:  # pure left shifts: exactly double
            assert torch.equal(hi, lo)
        else:  # 8x8 below QP 36 has the standard's rounding right shift
            assert int((hi - lo).abs().max()) <= 1
    y = torch.randint(-5000, 5001, (2000, n, n), generator=rng)
    a, b = quantize(2 * y, 30, size=n), quantize(y, 24, size=n)
    assert int((a - b).abs().max()) <= 1 and float((a == b).float().mean()) > 0.99
    assert quant_step(30) == pytest.approx(2 * quant_step(24))


@pytest.mark.parametrize("size", [4, 8])
def test_code_residual_tiles_and_crops(rng, size):
    r = torch.randint(-40, 41, (2, 37, 53), generator=rng)
    out = code_residual(r, 0, size=size)
    assert out.shape == r.shape and out.dtype == torch.int64
    assert int((out - r).abs().max()) <= 1
    zero = torch.zeros(3, 9, 11, dtype=torch.int64)
    assert torch.equal(code_residual(zero, 40, size=size), zero)


def test_small_noise_is_removed_at_high_qp(rng):
    noise = (torch.randint(0, 2, (3, 64, 64), generator=rng) * 2 - 1) * 2
    assert int(code_residual(noise, 36).abs().max()) == 0


def test_errors():
    with pytest.raises(ValueError, match="qp"):
        quantize(torch.zeros(4, 4, dtype=torch.int64), 52)
    with pytest.raises(ValueError, match=r"\(\.\.\., 4, 4\)"):
        forward_int_dct(torch.zeros(4, 5, dtype=torch.int64))
    with pytest.raises(ValueError, match="int32/int64"):
        inverse_int_dct(torch.zeros(4, 4))
    with pytest.raises(ValueError, match=r"\[-255, 255\]"):
        code_residual(torch.full((4, 4), 300), 30)
    with pytest.raises(ValueError, match="size"):
        code_residual(torch.zeros(4, 4, dtype=torch.int64), 30, size=16)

"""The numba kernels (used on the CPU when numba is installed) give bit-identical results to the
torch paths they accelerate."""

import pytest
import torch

from vidshield.defenses.temporal import motion, quant

pytest.importorskip("numba")


@pytest.fixture
def torch_only(monkeypatch):
    """Run the code below with the numba kernels disabled."""

    def disable():
        monkeypatch.setattr(motion, "_numba_kernels", lambda: None)
        monkeypatch.setattr(quant, "_numba_kernels", lambda: None)

    return disable


@pytest.mark.parametrize("shape", [(3, 37, 53), (1, 64, 96)])
@pytest.mark.parametrize("qp", [0, 17, 36, 51])
@pytest.mark.parametrize("intra", [False, True])
def test_fused_residual_coding_matches_torch(shape, qp, intra, torch_only):
    g = torch.Generator().manual_seed(qp)
    residual = torch.randint(-255, 256, shape, generator=g, dtype=torch.int32)
    fast = quant.code_residual(residual, qp, intra=intra)
    torch_only()
    assert torch.equal(fast, quant.code_residual(residual, qp, intra=intra))


@pytest.mark.parametrize("shape, block", [((2, 3, 37, 53), 8), ((1, 1, 64, 64), 16)])
def test_block_copy_matches_the_gather(shape, block, torch_only):
    g = torch.Generator().manual_seed(1)
    ref = torch.rand(shape, generator=g)
    hb, wb = -(-shape[-2] // block), -(-shape[-1] // block)
    vectors = torch.randint(-7, 8, (shape[0], hb, wb, 2), generator=g)
    fast = motion.motion_compensate(ref, vectors, block=block)
    torch_only()
    assert torch.equal(fast, motion.motion_compensate(ref, vectors, block=block))


def test_compensation_stays_differentiable():
    ref = torch.rand(1, 3, 16, 16, requires_grad=True)
    vectors = torch.zeros(1, 2, 2, 2, dtype=torch.int64)
    motion.motion_compensate(ref, vectors, block=8).sum().backward()
    assert torch.equal(ref.grad, torch.ones_like(ref))


@pytest.mark.parametrize("shape", [(2, 3, 37, 53), (1, 3, 64, 64)])
@pytest.mark.parametrize("qp", [0, 24, 36, 51])
def test_fused_rebuild_matches_torch(shape, qp, torch_only, monkeypatch):
    """The whole residual step (round, code, add, clip) fused in numba equals the torch path."""
    from vidshield.defenses.temporal import defense

    g = torch.Generator().manual_seed(qp)
    prev = torch.rand(shape, generator=g)
    cur = (prev.roll(2, -1) + 0.02 * torch.randn(shape, generator=g)).clamp(0, 1)
    fast = defense.rebuild_frames(cur, prev, None, qp=qp)
    torch_only()
    monkeypatch.setattr(defense, "_numba_kernels", lambda: None)
    assert torch.equal(fast, defense.rebuild_frames(cur, prev, None, qp=qp))

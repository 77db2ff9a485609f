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


def _kernels():
    kernels = motion._numba_kernels()
    assert kernels is not None
    return kernels


@pytest.mark.parametrize("shape", [(2, 3, 37, 53), (1, 3, 8, 8), (1, 3, 3, 70)])
@pytest.mark.parametrize("channels", ["luma", "rgb"])
@pytest.mark.parametrize("block, extra", [(8, 7), (5, 0), (16, 3)])
def test_planes_kernel_matches_frame_planes_and_padding(shape, channels, block, extra):
    g = torch.Generator().manual_seed(3)
    frames = torch.rand(shape, generator=g)
    frames[0, :, 0, :4] = torch.tensor([0.5, 1.5, 2.5, 254.5]) / 255  # halfway cases round to even
    frames[0, :, -1, -2:] = torch.tensor([0.0, 1.0])
    planes = _kernels().to_planes(frames.numpy(), channels == "luma", block, extra)
    expected = motion._pad_to_grid(motion.frame_planes(frames, channels), block, extra)
    assert planes.dtype.name == "uint8"
    assert torch.equal(torch.from_numpy(planes).to(torch.int16), expected)


def _planes_pair(shape, shift, seed):
    g = torch.Generator().manual_seed(seed)
    ref = torch.randint(0, 256, shape, generator=g, dtype=torch.uint8)
    noise = torch.randint(-6, 7, shape, generator=g)
    cur = (ref.roll(shift, dims=(-2, -1)).to(torch.int16) + noise).clamp(0, 255).to(torch.uint8)
    return cur, ref


@pytest.mark.parametrize(
    "shape, block, search",
    [
        ((2, 1, 48, 64), 8, 7),
        ((1, 1, 40, 72), 8, 4),
        ((1, 3, 24, 104), 8, 3),
        ((1, 1, 32, 96), 16, 5),
        ((1, 1, 36, 44), 4, 2),
        ((1, 2, 30, 35), 5, 3),
    ],
)
def test_full_search_kernels_agree(shape, block, search):
    """The portable kernel, the uint16-lane kernel and the psadbw kernel (x86 AVX2) give the same
    vectors and SADs; widths that are not a multiple of 32 exercise the psadbw kernel's tail."""
    k = _kernels()
    cur, ref = _planes_pair(shape, (2, -3), seed=block)
    c = k.pad_planes(cur.numpy(), block, 0)
    r = k.pad_planes(ref.numpy(), block, search)
    order = motion._order(search)
    expected = k.full_search(c.astype("int16"), r.astype("int16"), block, search, order)
    runs = [k.full_search(c, r, block, search, order)]
    if block % 4 == 0 and shape[1] * block * block * 255 < 1 << 16:
        runs.append(k.full_search_packed(c, r, block, search, order))
    if block % 8 == 0 and k.HAS_AVX2:
        runs.append(k.full_search_psadbw(c, r, block, search, order))
    for vec, sad in runs:
        assert (vec == expected[0]).all() and (sad == expected[1]).all()


@pytest.mark.parametrize("method", motion.SEARCH_METHODS)
@pytest.mark.parametrize("planes", ["uint8", "int16"])
@pytest.mark.parametrize("block", [8, 16, 6])
def test_numba_block_match_equals_torch(method, planes, block):
    """uint8 planes take the psadbw paths (x86), int16 planes (values past 255) the scalar ones."""
    cur, ref = _planes_pair((2, 1, 40, 56), (1, 2), seed=7)
    cur, ref = cur.to(torch.int16), ref.to(torch.int16)
    if planes == "int16":
        cur, ref = cur * 3 - 100, ref * 3 - 100
    fast = motion.block_match(cur, ref, block=block, search=5, method=method, channel_dim=True, backend="numba")
    slow = motion.block_match(cur, ref, block=block, search=5, method=method, channel_dim=True, backend="torch")
    assert torch.equal(fast[0], slow[0]) and torch.equal(fast[1], slow[1])


@pytest.mark.parametrize("method", ["full", "diamond"])
@pytest.mark.parametrize("channels", ["luma", "rgb"])
def test_estimate_motion_numba_equals_torch(method, channels):
    g = torch.Generator().manual_seed(5)
    ref = torch.rand(2, 3, 35, 50, generator=g)
    cur = (ref.roll((1, -2), dims=(-2, -1)) + 0.03 * torch.randn(ref.shape, generator=g)).clamp(0, 1)
    fast = motion.estimate_motion(cur, ref, method=method, channels=channels, backend="numba")
    slow = motion.estimate_motion(cur, ref, method=method, channels=channels, backend="torch")
    assert torch.equal(fast[0], slow[0]) and torch.equal(fast[1], slow[1])


@pytest.mark.parametrize("transform, residual", [(4, True), (8, True), (4, False)])
@pytest.mark.parametrize("method", ["full", "hexagon"])
def test_bidirectional_rebuild_numba_equals_torch(transform, residual, method):
    """Two references, some rows with only one of them: the numba path (per-frame worker, block
    choice by SAD, two-reference block copy, fused residual) equals the torch path exactly."""
    from vidshield.defenses.temporal import defense

    g = torch.Generator().manual_seed(11)
    prev = torch.rand(4, 3, 29, 45, generator=g)
    nxt = prev.roll((2, 1), dims=(-2, -1))
    cur = (0.5 * prev.roll(1, -1) + 0.5 * nxt + 0.02 * torch.randn(prev.shape, generator=g)).clamp(0, 1)
    has_prev = torch.tensor([True, False, True, True])
    has_next = torch.tensor([True, True, False, True])
    kw = dict(has_prev=has_prev, has_next=has_next, transform=transform, residual=residual, method=method, qp=30)
    fast = defense.rebuild_frames(cur, prev, nxt, backend="numba", **kw)
    slow = defense.rebuild_frames(cur, prev, nxt, backend="torch", **kw)
    assert torch.equal(fast, slow)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_defense_forward_numba_equals_torch(dtype, moving_video):
    """TemporalDefense.forward's per-frame numba loop (reference planes reused along a run of
    polluted frames) equals the torch backend, for float32 and float64 videos."""
    from vidshield.defenses.temporal import TemporalDefense

    video = torch.stack([moving_video, moving_video.flip(-1)]).to(dtype)  # (2, 8, 3, 32, 48)
    mask = torch.zeros(video.shape[:2], dtype=torch.bool)
    mask[:, 1:4] = True
    mask[:, -1] = True
    fast = TemporalDefense(backend="numba")(video, polluted=mask)
    slow = TemporalDefense(backend="torch")(video, polluted=mask)
    assert fast.dtype == dtype and torch.equal(fast, slow)
    assert torch.equal(fast[:, 0], video[:, 0]) and torch.equal(fast[:, 4], video[:, 4])


@pytest.mark.parametrize("options", [{}, {"transform": 8}, {"residual": False}, {"bidirectional": False}])
def test_defense_on_a_strided_clip_matches_torch(options, torch_only):
    """The numba path reads its output copy in place of a contiguous copy of a strided input
    (rebuilt frames never serve as references): same frames as the torch path, input untouched."""
    from tests.conftest import make_moving_video

    from vidshield.defenses.temporal import TemporalDefense

    g = torch.Generator().manual_seed(3)
    clip = make_moving_video(10, 24, 40)
    clip = (clip + 0.04 * torch.randn(clip.shape, generator=g)).clamp(0, 1)
    strided = clip.transpose(-1, -2).contiguous().transpose(-1, -2).unsqueeze(0)  # same values, other strides
    assert not strided.is_contiguous()
    before = strided.clone()
    mask = torch.tensor([[False, True, True, False, True, False, True, True, True, False]])
    defense = TemporalDefense(**options)
    fast = defense(strided, polluted=mask)
    assert torch.equal(strided, before)
    torch_only()
    assert torch.equal(fast, TemporalDefense(backend="torch", **options)(clip.unsqueeze(0), polluted=mask))

"""The randomised temporal defense (issue 13's hardening switch): random block grid offset and QP."""

import pytest
import torch
from tests.conftest import make_moving_video

from vidshield.defenses.temporal import TemporalDefense, defend_stream


def _perturbed(rng, marked=(2, 3, 6)):
    clean = make_moving_video(frames=8, height=32, width=48).unsqueeze(0)
    noisy = clean.clone()
    sign = torch.randint(0, 2, noisy[0, list(marked)].shape, generator=rng).float() * 2 - 1
    noisy[0, list(marked)] = (clean[0, list(marked)] + sign * 2 / 255).clamp(0, 1)
    mask = torch.zeros(1, 8, dtype=torch.bool)
    mask[0, list(marked)] = True
    return clean, noisy, mask


def test_draws_cover_the_ranges_and_a_seed_reproduces_the_result(rng):
    defense = TemporalDefense(random_grid=True, qp_range=(30, 42))
    draws = defense.draw(400, torch.Generator().manual_seed(0))
    assert {(dy, dx) for dy, dx, _ in draws} == {(dy, dx) for dy in range(8) for dx in range(8)}
    assert {qp for *_, qp in draws} == set(range(30, 43))
    assert TemporalDefense().draw(3) == [(0, 0, 36)] * 3  # not randomised: the fixed settings
    _, noisy, mask = _perturbed(rng)
    batch, masks = noisy.expand(6, -1, -1, -1, -1).clone(), mask.expand(6, -1).clone()
    first = defense(batch, polluted=masks, generator=torch.Generator().manual_seed(7))
    again = defense(batch, polluted=masks, generator=torch.Generator().manual_seed(7))
    assert torch.equal(first, again)
    assert any(not torch.equal(first[0], first[i]) for i in range(1, 6))  # each video draws its own


def test_every_draw_removes_the_perturbation_and_keeps_unmarked_frames(rng):
    clean, noisy, mask = _perturbed(rng)
    defense = TemporalDefense(random_grid=True, qp_range=(30, 42))
    gen = torch.Generator().manual_seed(1)
    for _ in range(6):
        out = defense(noisy, polluted=mask, generator=gen)
        assert torch.equal(out[~mask], noisy[~mask])  # unmarked frames bit-identical
        before = (noisy - clean)[0, [2, 3, 6], :, :24, :40].abs().mean()
        after = (out - clean)[0, [2, 3, 6], :, :24, :40].abs().mean()
        assert after < 0.1 * before
    frame = torch.randint(0, 256, (3, 21, 30), generator=rng).float() / 255
    static = frame.expand(1, 5, 3, 21, 30).clone()  # odd size: the padded grid still rebuilds exactly
    still = torch.tensor([[False, True, True, False, True]])
    assert torch.equal(defense(static, polluted=still, generator=gen), static)


def test_the_grid_offset_changes_the_rebuild_and_a_fixed_draw_is_the_plain_defense(rng):
    _, noisy, mask = _perturbed(rng)
    plain = TemporalDefense(qp=33)(noisy, polluted=mask)
    assert torch.equal(TemporalDefense(qp_range=(33, 33))(noisy, polluted=mask), plain)
    shifted = TemporalDefense(random_grid=True, qp=33)
    seen_other = False
    for seed in range(6):
        (dy, dx, qp) = shifted.draw(1, torch.Generator().manual_seed(seed))[0]
        out = shifted(noisy, polluted=mask, generator=torch.Generator().manual_seed(seed))
        assert qp == 33
        if (dy, dx) == (0, 0):
            assert torch.equal(out, plain)
        else:
            seen_other = True
            assert not torch.equal(out, plain)  # another grid, other blocks and residuals
    assert seen_other


def test_bad_ranges_and_streams_are_refused(moving_video):
    with pytest.raises(ValueError, match="qp_range"):
        TemporalDefense(qp_range=(40, 30))
    with pytest.raises(ValueError, match="qp"):
        TemporalDefense(qp_range=(20, 60))
    with pytest.raises(ValueError, match="deterministic"):
        list(defend_stream(iter(moving_video), [False] * 8, TemporalDefense(random_grid=True)))
    assert TemporalDefense(random_grid=True).randomised and not TemporalDefense().randomised

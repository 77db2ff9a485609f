import pytest
import torch

from vidshield.attacks import PGD
from vidshield.attacks.base import predict


def test_pgd_keeps_eps_and_lowers_accuracy(trained_lrcn, correct_clips):
    x, y = correct_clips
    eps = 16 / 255
    adv, reports = PGD(trained_lrcn, eps=eps, steps=10).attack_with_report(
        x, y, generator=torch.Generator().manual_seed(0)
    )
    assert float((adv - x).abs().max()) <= eps + 1e-6
    assert float((predict(trained_lrcn, adv) == y).float().mean()) <= 0.5
    assert all(r.perturbed_frames == 8 for r in reports)


def test_pgd_on_k_frames_leaves_the_others_bit_identical(trained_lrcn, correct_clips):
    x, y = correct_clips
    adv = PGD(trained_lrcn, num_frames=2, steps=3)(x, y, generator=torch.Generator().manual_seed(0))
    assert torch.equal(adv[:, [1, 2, 3, 5, 6, 7]], x[:, [1, 2, 3, 5, 6, 7]])  # spread_frames(8, 2) = (0, 4)
    adv = PGD(trained_lrcn, frames=[3], steps=3)(x, y, generator=torch.Generator().manual_seed(0))
    assert torch.equal(adv[:, [0, 1, 2, 4, 5, 6, 7]], x[:, [0, 1, 2, 4, 5, 6, 7]])


def test_pgd_is_deterministic_for_a_seed(trained_lrcn, correct_clips):
    x, y = correct_clips
    attack = PGD(trained_lrcn, steps=3)
    a = attack(x, y, generator=torch.Generator().manual_seed(1))
    b = attack(x, y, generator=torch.Generator().manual_seed(1))
    c = attack(x, y, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_targeted_pgd_reaches_the_target(trained_lrcn, correct_clips):
    x, y = correct_clips
    target = (y + 1) % 3
    _, reports = PGD(trained_lrcn, eps=32 / 255, steps=20, targeted=True).attack_with_report(
        x, y, target=target, generator=torch.Generator().manual_seed(0)
    )
    assert sum(r.success for r in reports) >= 5


def test_pgd_argument_errors(trained_lrcn):
    with pytest.raises(ValueError, match="not both"):
        PGD(trained_lrcn, frames=[0], num_frames=2)
    with pytest.raises(ValueError):
        PGD(trained_lrcn, eps=0)

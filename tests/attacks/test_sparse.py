import pytest
import torch

from vidshield.attacks import REFERENCE_MASK_40, SparseAttack, spread_frames
from vidshield.attacks.base import predict
from vidshield.attacks.sparse import frame_mask


def test_reference_mask_and_spread_frames():
    assert REFERENCE_MASK_40 == (0, 11, 12, 13, 19, 20, 21, 22, 32, 33)
    assert spread_frames(40, 10) == REFERENCE_MASK_40
    assert spread_frames(8, 3) == (0, 2, 5)
    assert spread_frames(16, 16) == tuple(range(16))
    with pytest.raises(ValueError):
        spread_frames(8, 9)
    with pytest.raises(ValueError, match="outside"):
        frame_mask(8, [8])


def test_only_masked_frames_change_and_accuracy_drops(trained_lrcn, correct_clips):
    x, y = correct_clips
    attack = SparseAttack(trained_lrcn, frames=[1, 3, 4, 6], steps=60, lr=3e-3, lam=0.1)
    adv, reports = attack.attack_with_report(x, y)
    unmasked = [0, 2, 5, 7]
    assert torch.equal(adv[:, unmasked], x[:, unmasked])  # bit-identical
    assert all(r.perturbed_frames <= 4 for r in reports)
    assert float((predict(trained_lrcn, adv) == y).float().mean()) < 0.5
    assert sum(r.success for r in reports) >= 4
    assert all(r.pred_before == r.label for r in reports)


def test_deterministic_and_batch_equals_one_by_one(trained_lrcn, correct_clips):
    x, y = correct_clips
    attack = SparseAttack(trained_lrcn, num_frames=2, steps=15)
    a1, a2 = attack(x[:3], y[:3]), attack(x[:3], y[:3])
    assert torch.equal(a1, a2)
    single = torch.stack([attack(x[i], y[i : i + 1]) for i in range(3)])
    assert torch.allclose(a1, single, atol=1e-5)


def test_linf_cap_is_kept(trained_lrcn, correct_clips):
    x, y = correct_clips
    eps = 4 / 255
    adv, reports = SparseAttack(trained_lrcn, num_frames=4, steps=30, lr=1e-2, eps=eps).attack_with_report(x, y)
    assert max(r.linf for r in reports) <= eps + 1e-6
    assert float((adv - x).abs().amax()) <= eps + 1e-6
    # the cap binds: the attack did perturb, up to the cap on some pixel (a no-op would pass the bound)
    assert float((adv - x).abs().amax()) >= 0.5 * eps and max(r.perturbed_frames for r in reports) >= 1


def test_salient_mode_perturbs_k_frames_per_video(trained_lrcn, correct_clips):
    x, y = correct_clips
    attack = SparseAttack(trained_lrcn, num_frames=2, mask_mode="salient", steps=20)
    adv, reports = attack.attack_with_report(x, y)
    assert all(1 <= r.perturbed_frames <= 2 for r in reports)
    with torch.no_grad():
        mask = attack.mask_for(x, y)
    assert mask.sum(1).tolist() == [2] * len(y)
    changed = (adv - x).flatten(2).abs().amax(2) > 0
    assert not bool((changed & ~mask).any())


def test_targeted_mode_reaches_the_target(trained_lrcn, correct_clips):
    x, y = correct_clips
    target = (y + 1) % 3
    _adv, reports = SparseAttack(
        trained_lrcn, num_frames=4, steps=100, lr=3e-3, lam=0.1, targeted=True
    ).attack_with_report(x, y, target=target)
    assert sum(r.success for r in reports) >= 5
    assert all(r.target == int(t) for r, t in zip(reports, target))


def test_misclassified_videos_are_left_unchanged(trained_lrcn, correct_clips):
    x, y = correct_clips
    wrong = (y[:2] + 1) % 3
    adv = SparseAttack(trained_lrcn, num_frames=2, steps=5)(x[:2], wrong)
    assert torch.equal(adv, x[:2])


def test_bad_arguments(trained_lrcn):
    with pytest.raises(ValueError, match="mask_mode"):
        SparseAttack(trained_lrcn, mask_mode="random")
    with pytest.raises(ValueError, match="needs frames"):
        SparseAttack(trained_lrcn, mask_mode="given")
    with pytest.raises(ValueError, match="eps"):
        SparseAttack(trained_lrcn, eps=0)

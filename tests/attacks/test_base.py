import pytest
import torch
from torch import nn

from vidshield.attacks import PGD, SparseAttack
from vidshield.attacks.base import _recurrent_layers_in_train_mode, attack_mode, probability_loss


def test_attack_restores_model_modes_and_requires_grad(trained_lrcn, correct_clips):
    x, y = correct_clips
    trained_lrcn.train()
    trained_lrcn.cnn.eval()
    modes = {name: m.training for name, m in trained_lrcn.named_modules()}
    try:
        PGD(trained_lrcn, steps=2)(x[:2], y[:2], generator=torch.Generator().manual_seed(0))
        assert {name: m.training for name, m in trained_lrcn.named_modules()} == modes
        assert all(p.requires_grad for p in trained_lrcn.parameters())
        assert all(p.grad is None for p in trained_lrcn.parameters())
    finally:
        trained_lrcn.eval()


def test_attack_mode_is_eval_inside():
    model = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5))
    model.train()
    with attack_mode(model):
        assert not any(m.training for m in model.modules())
        assert not any(p.requires_grad for p in model.parameters())
    assert all(m.training for m in model.modules())


def test_recurrent_helper_sets_only_rnns_to_train_with_zero_dropout():
    model = nn.Sequential(nn.LSTM(4, 4, num_layers=2, dropout=0.3), nn.Dropout(0.5)).eval()
    with _recurrent_layers_in_train_mode(model):
        assert model[0].training and model[0].dropout == 0.0
        assert not model[1].training
    assert not model[0].training and model[0].dropout == 0.3


def test_inputs_are_not_mutated(trained_lrcn, correct_clips):
    x, y = correct_clips
    x0, y0 = x.clone(), y.clone()
    SparseAttack(trained_lrcn, num_frames=2, steps=3)(x, y)
    assert torch.equal(x, x0) and torch.equal(y, y0)


def test_single_video_layout_and_range(trained_lrcn, correct_clips):
    x, y = correct_clips
    adv = PGD(trained_lrcn, steps=2)(x[0], y[:1], generator=torch.Generator().manual_seed(0))
    assert adv.shape == x[0].shape and adv.dtype == torch.float32
    assert float(adv.min()) >= 0.0 and float(adv.max()) <= 1.0


def test_bad_inputs_raise_clear_errors(trained_lrcn, correct_clips):
    x, y = correct_clips
    attack = PGD(trained_lrcn, steps=1)
    with pytest.raises(ValueError, match="labels must have shape"):
        attack(x, y[:2])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        attack(x * 3, y)
    with pytest.raises(ValueError, match="untargeted"):
        attack(x, y, target=1)
    with pytest.raises(ValueError, match="targeted: pass target"):
        PGD(trained_lrcn, targeted=True)(x, y)
    with pytest.raises(ValueError, match="nn.Module"):
        PGD(object())


def test_probability_loss_matches_the_formulas():
    logits = torch.tensor([[2.0, 0.0, -1.0]])
    p = logits.softmax(1)[0]
    untargeted = probability_loss(logits, torch.tensor([0]))
    targeted = probability_loss(logits, torch.tensor([0]), torch.tensor([2]))
    assert float(untargeted) == pytest.approx(float(-torch.log(1 - p[0] + 1e-6)))
    assert float(targeted) == pytest.approx(float(-torch.log(p[2] + 1e-6)))

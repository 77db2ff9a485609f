import pytest
import torch

from vidshield.attacks import AdversarialFraming, apply_framing, load_framing, save_framing, train_framing
from vidshield.attacks.base import predict
from vidshield.attacks.framing import border_mask


def test_framing_changes_only_the_border(trained_lrcn, correct_clips):
    x, y = correct_clips
    framing = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    adv = AdversarialFraming(trained_lrcn, framing, width=3)(x, y)
    assert torch.equal(adv[..., 3:-3, 3:-3], x[..., 3:-3, 3:-3])  # interior bit-identical
    mask = border_mask(32, 32, 3)
    assert torch.equal(adv[..., mask], framing[0][:, mask].expand_as(adv[..., mask]))


def test_per_frame_framing_is_periodic():
    framing = torch.stack([torch.zeros(3, 8, 8), torch.ones(3, 8, 8)])
    adv = apply_framing(torch.full((1, 4, 3, 8, 8), 0.5), framing, 1)
    assert adv[0, :, 0, 0, 0].tolist() == [0.0, 1.0, 0.0, 1.0]


def test_trained_framing_lowers_accuracy(trained_lrcn, train_clips, correct_clips):
    x, y = correct_clips
    framing = train_framing(trained_lrcn, *train_clips, border=3, steps=40, seed=0)
    assert framing.shape == (1, 3, 32, 32) and float(framing.min()) >= 0 and float(framing.max()) <= 1
    again = train_framing(trained_lrcn, *train_clips, border=3, steps=40, seed=0)
    assert torch.equal(framing, again)
    adv = AdversarialFraming(trained_lrcn, framing, width=3)(x, y)
    assert float((predict(trained_lrcn, adv) == y).float().mean()) < 1.0


def test_framing_save_load_and_errors(tmp_path):
    framing = torch.rand(2, 3, 16, 16)
    save_framing(tmp_path / "f", framing, width=2)
    loaded, width, _meta = load_framing(tmp_path / "f")
    assert torch.equal(loaded, framing) and width == 2
    with pytest.raises(ValueError, match="border width"):
        border_mask(16, 16, 8)

import pytest
import torch

from vidshield.attacks import (
    CDUPGenerator,
    UniversalAttack,
    apply_universal,
    load_universal,
    save_universal,
    train_universal,
)
from vidshield.attacks.base import predict
from vidshield.attacks.universal import sample_training_batch, universal_loss
from vidshield.errors import CheckpointError

TINY = dict(frames=8, height=32, width=32, channels=(16, 8, 8, 8))


def test_generator_shapes_and_p_max():
    gen = CDUPGenerator(**TINY, p_max=10 / 255)
    with torch.no_grad():
        p = gen(torch.randn(3, 100))
    assert p.shape == (3, 8, 3, 32, 32)
    assert float(p.abs().max()) <= 10 / 255 + 1e-7
    # p_max scales a tanh output: a non-trivial perturbation that the bound actually limits
    assert float(p.abs().max()) > 0.2 * 10 / 255 and not torch.equal(p[0], p[1])
    loose = CDUPGenerator(**TINY, p_max=20 / 255)
    loose.load_state_dict(gen.state_dict())
    z = torch.randn(2, 100, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(loose(z), 2 * gen(z), atol=1e-6)
    full = CDUPGenerator()
    with torch.no_grad():
        assert full(torch.randn(2, 100)).shape == (2, 16, 3, 112, 112)


def test_two_d_variant_tiles_one_frame():
    with torch.no_grad():
        p = CDUPGenerator(**TINY, two_d=True)(torch.randn(2, 100))
    assert torch.equal(p, p[:, :1].expand_as(p))


def test_perturbation_is_fixed_for_a_seed():
    gen = CDUPGenerator(**TINY)
    assert torch.equal(gen.perturbation(seed=3), gen.perturbation(seed=3))
    assert not torch.equal(gen.perturbation(seed=3), gen.perturbation(seed=4))


def test_apply_universal_is_periodic_in_time_with_offsets():
    p = torch.arange(3, dtype=torch.float32).view(3, 1, 1, 1).expand(3, 3, 2, 2) * 0.1
    video = torch.full((2, 7, 3, 2, 2), 0.5)
    adv = apply_universal(video, p, torch.tensor([0, 2]))
    got = (adv - 0.5)[:, :, 0, 0, 0] / 0.1
    assert torch.allclose(got[0], torch.tensor([0, 1, 2, 0, 1, 2, 0.0]), atol=1e-5)
    assert torch.allclose(got[1], torch.tensor([2, 0, 1, 2, 0, 1, 2.0]), atol=1e-5)
    with pytest.raises(ValueError, match="resize or crop"):
        apply_universal(torch.zeros(1, 2, 3, 4, 4), p)


def test_same_perturbation_on_every_clip(trained_lrcn):
    p = CDUPGenerator(**TINY).perturbation(seed=0)
    grey = torch.full((3, 8, 3, 32, 32), 0.5)  # clamping cannot bite at 0.5 +- 10/255
    adv = UniversalAttack(trained_lrcn, p)(grey, torch.zeros(3, dtype=torch.int64))
    d = adv - grey
    assert torch.equal(d[0], d[1]) and torch.equal(d[1], d[2])
    assert torch.allclose(d[0], p, atol=1e-6)
    shifted = UniversalAttack(trained_lrcn, p, offset="random")(
        grey, torch.zeros(3, dtype=torch.int64), generator=torch.Generator().manual_seed(0)
    )
    assert float((shifted - grey).abs().max()) <= 10 / 255 + 1e-6


def test_training_lowers_accuracy_and_keeps_p_max(trained_lrcn, train_clips, correct_clips):
    x, y = correct_clips
    gen = CDUPGenerator(**TINY, p_max=0.1)
    losses = train_universal(gen, trained_lrcn, *train_clips, steps=60, lr=0.01, seed=0)
    assert len(losses) == 60 and sum(losses[-10:]) < sum(losses[:10])
    adv, reports = UniversalAttack(trained_lrcn, gen).attack_with_report(x, y)
    assert float((predict(trained_lrcn, adv) == y).float().mean()) < 1.0
    assert max(r.linf for r in reports) <= 0.1 + 1e-6
    assert all(r.perturbed_frames == 8 for r in reports)


def test_training_is_deterministic(trained_lrcn, train_clips):
    a, b = CDUPGenerator(**TINY), CDUPGenerator(**TINY)
    b.load_state_dict(a.state_dict())
    la = train_universal(a, trained_lrcn, *train_clips, steps=3, seed=5)
    lb = train_universal(b, trained_lrcn, *train_clips, steps=3, seed=5)
    assert la == lb and torch.equal(a.perturbation(), b.perturbation())


def test_losses_and_targeted_batches():
    logits = torch.log(torch.tensor([[0.7, 0.2, 0.1], [0.2, 0.5, 0.3]]))
    labels = torch.tensor([0, 1])
    assert float(universal_loss(logits, labels, None)) == pytest.approx(
        float(-(torch.log(torch.tensor(0.3)) + torch.log(torch.tensor(0.5))) / 2)
    )
    assert float(universal_loss(logits, labels, 0)) == pytest.approx(
        float(-(torch.log(torch.tensor(0.3)) + torch.log(torch.tensor(0.5))) / 2)
    )
    idx = sample_training_batch(torch.tensor([0, 1, 2, 0, 1, 2]), 8, 2, torch.Generator().manual_seed(0))
    lab = torch.tensor([0, 1, 2, 0, 1, 2])[idx]
    assert int((lab == 2).sum()) == 4 and int((lab != 2).sum()) == 4
    with pytest.raises(ValueError, match="no clip of the target class"):
        sample_training_batch(torch.tensor([0, 1]), 4, 2, torch.Generator())


def test_save_and_load_round_trip(tmp_path):
    gen = CDUPGenerator(**TINY, two_d=True)
    p = gen.perturbation(seed=1)
    save_universal(tmp_path / "u", p, generator_net=gen, metadata={"target_class": 2})
    p2, gen2, meta = load_universal(tmp_path / "u")
    assert torch.equal(p, p2) and meta["variant"] == "2d-dup" and meta["target_class"] == 2
    assert torch.equal(gen2.perturbation(seed=1), p)
    save_universal(tmp_path / "bare", p)
    assert load_universal(tmp_path / "bare")[1] is None
    with pytest.raises(CheckpointError):
        load_universal(tmp_path / "missing")

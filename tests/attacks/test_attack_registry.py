"""The attack registry: names, factories, checkpoints, and a new attack registered from outside."""

import pytest
import torch

from vidshield.attacks import (
    ATTACKS,
    PGD,
    AdversarialFraming,
    Attack,
    SparseAttack,
    UniversalAttack,
    create_attack,
    register_attack,
    save_framing,
    save_universal,
)
from vidshield.attacks.registry import ATTACKS as REGISTRY
from vidshield.errors import VidshieldError
from vidshield.models import create_model


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return create_model("test-lrcn", num_classes=10).eval()


def test_built_in_names_and_classes(model, tmp_path):
    assert {"sparse", "pgd", "dense", "framing"} <= set(ATTACKS) and ATTACKS is REGISTRY
    sparse = create_attack("sparse", model, num_frames=3, steps=5)
    assert type(sparse) is SparseAttack and sparse.config()["steps"] == 5
    assert type(create_attack("pgd", model, eps=4 / 255)) is PGD
    spec = model.input_spec
    perturbation = torch.full((spec.frames, 3, spec.height, spec.width), 0.01)
    dense = create_attack("dense", model, perturbation=perturbation)
    assert type(dense) is UniversalAttack
    path = save_universal(tmp_path / "u", perturbation, metadata={"target_class": 4})
    loaded = create_attack("dense", model, checkpoint=path)
    assert torch.equal(loaded.perturbation, perturbation) and loaded.target_class == 4
    framing = torch.rand(1, 3, spec.height, spec.width)
    save_framing(tmp_path / "f", framing, width=3)
    frame_attack = create_attack("framing", model, checkpoint=tmp_path / "f")
    assert type(frame_attack) is AdversarialFraming and frame_attack.width == 3
    with pytest.raises(ValueError, match="exactly one"):
        create_attack("dense", model)
    with pytest.raises(VidshieldError, match="unknown attack 'blur'.*sparse"):
        create_attack("blur", model)


def test_registering_a_new_attack(model):
    @register_attack("test-identity")
    class Identity(Attack):
        def perturb(self, video, labels, target, generator):
            return video

    try:
        attack = create_attack("test-identity", model)
        assert isinstance(attack, Identity) and attack.model is model
        with pytest.raises(ValueError, match="already registered"):
            register_attack("test-identity")(Identity)
    finally:
        del ATTACKS["test-identity"]

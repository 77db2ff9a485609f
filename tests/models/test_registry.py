import pytest
import torch

from vidshield.models import MODEL_REGISTRY, create_model, list_models, register_model


def test_all_variants_are_registered_with_their_input_specs():
    assert {"c3d", "c3d-small", "lrcn", "lrcn-small", "test-c3d", "test-lrcn"} <= set(list_models())
    with torch.device("meta"):
        specs = {name: create_model(name, num_classes=10).input_spec for name in list_models()}
    assert (specs["c3d"].frames, specs["c3d"].height, specs["c3d"].width) == (16, 112, 112)
    assert (specs["lrcn"].frames, specs["lrcn"].height) == (40, 112)
    for name in ("test-c3d", "test-lrcn"):
        model = create_model(name, num_classes=10)
        assert sum(p.numel() for p in model.parameters()) < 100_000


def test_create_model_records_name_and_overrides():
    model = create_model("c3d-small", num_classes=6, input_size=(16, 48, 48))
    assert model.arch_name == "c3d-small" and model.arch_config == {"input_size": (16, 48, 48)}
    assert model.num_classes == 6 and model.input_spec.height == 48


def test_unknown_names_and_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="unknown model 'c4d'.*c3d-small"):
        create_model("c4d", num_classes=3)
    with pytest.raises(ValueError, match="invalid arguments for model 'test-c3d'"):
        create_model("test-c3d", num_classes=3, depth=7)
    with pytest.raises(ValueError, match="already registered"):
        register_model("c3d")(lambda **kw: None)
    assert MODEL_REGISTRY["c3d"].__name__ == "c3d"

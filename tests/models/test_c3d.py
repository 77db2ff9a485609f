import pytest
import torch

from vidshield.models import C3D, create_model
from vidshield.models.c3d import c3d_feature_shape


def test_published_c3d_has_78_4m_parameters_and_8192_features():
    with torch.device("meta"):
        model = create_model("c3d", num_classes=101)
    assert abs(sum(p.numel() for p in model.parameters()) - 78.4e6) < 0.1e6
    assert model.flat_features == 8192
    assert c3d_feature_shape((16, 112, 112)) == (1, 4, 4)
    convs = [m for m in model.features if isinstance(m, torch.nn.Conv3d)]
    assert [c.out_channels for c in convs] == [64, 128, 256, 256, 512, 512, 512, 512]
    fcs = [m for m in model.classifier if isinstance(m, torch.nn.Linear)]
    assert [(f.in_features, f.out_features) for f in fcs] == [(8192, 4096), (4096, 4096), (4096, 101)]
    pools = [m for m in model.features if isinstance(m, torch.nn.MaxPool3d)]
    assert pools[0].kernel_size == (1, 2, 2) and pools[-1].padding == (0, 1, 1)


def test_small_variant_shapes(rng):
    model = create_model("c3d-small", num_classes=10).eval()
    assert 0.8e6 < sum(p.numel() for p in model.parameters()) < 3e6
    video = torch.rand(2, 16, 3, 64, 64, generator=rng)
    out = model(video)
    assert out.shape == (2, 10) and out.dtype == torch.float32


def test_wrong_clip_size_is_a_clear_error(rng):
    model = create_model("test-c3d", num_classes=3)
    with pytest.raises(ValueError, match="16x32x32"):
        model(torch.rand(1, 8, 3, 32, 32, generator=rng))
    with pytest.raises(ValueError, match="16x32x32"):
        model(torch.rand(1, 16, 3, 40, 32, generator=rng))
    with pytest.raises(ValueError, match="float batch"):
        model(torch.rand(16, 3, 32, 32, generator=rng))
    with pytest.raises(ValueError, match="too small"):
        C3D(num_classes=3, input_size=(8, 32, 32))


def test_batch_equals_items_and_input_is_not_mutated(rng):
    model = create_model("test-c3d", num_classes=4).eval()
    video = torch.rand(3, 16, 3, 32, 32, generator=rng)
    before = video.clone()
    with torch.no_grad():
        batch = model(video)
        items = torch.cat([model(video[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(batch, items, rtol=1e-5, atol=1e-5)
    assert torch.equal(video, before)


def test_normalisation_uses_the_input_spec(rng):
    model = create_model("test-c3d", num_classes=2, mean=(0.2, 0.3, 0.4), std=(0.5, 0.5, 0.5)).eval()
    ref = create_model("test-c3d", num_classes=2).eval()
    ref.load_state_dict(model.state_dict())
    video = torch.rand(1, 16, 3, 32, 32, generator=rng)
    # ref normalises with mean 0.5, std 0.25: feed it the input that normalises to the same tensor.
    mean = torch.tensor([0.2, 0.3, 0.4]).view(1, 1, 3, 1, 1)
    shifted = (video - mean) / 0.5 * 0.25 + 0.5
    with torch.no_grad():
        torch.testing.assert_close(model(video), ref(shifted), rtol=1e-4, atol=1e-5)

"""``motion=True`` models: the frame differences are computed inside the model from RGB input, so
the tensor contract, checkpoints and the per-frame path stay as they are."""

import pytest
import torch

from vidshield.models import create_model, load_model, save_model
from vidshield.models.base import with_frame_differences


def test_frame_differences_are_the_next_three_channels():
    x = torch.arange(2 * 4 * 3 * 2 * 2, dtype=torch.float32).view(2, 4, 3, 2, 2) ** 2
    out = with_frame_differences(x)
    assert out.shape == (2, 4, 6, 2, 2)
    assert torch.equal(out[:, :, :3], x)
    assert torch.equal(out[:, 0, 3:], torch.zeros_like(x[:, 0]))
    assert torch.equal(out[:, 2, 3:], x[:, 2] - x[:, 1])


@pytest.mark.parametrize("arch", ["test-c3d", "test-lrcn"])
def test_a_motion_model_sees_six_channels_and_ignores_a_static_scene_shift(arch, rng):
    torch.manual_seed(0)
    model = create_model(arch, num_classes=3, motion=True).eval()
    first = next(m for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Conv3d)))
    assert first.in_channels == 6
    video = torch.rand(2, 16, 3, 32, 32, generator=rng)
    with torch.no_grad():
        assert model(video).shape == (2, 3)
        # the difference channels carry the motion: zero them (a still video) and the output changes
        still = video[:, :1].expand_as(video).contiguous()
        assert not torch.allclose(model(video), model(still))


def test_a_motion_model_round_trips_through_its_checkpoint(tmp_path, rng):
    torch.manual_seed(0)
    model = create_model("test-lrcn", num_classes=3, motion=True, input_size=[16, 48, 48]).eval()
    save_model(model, tmp_path / "m")
    back = load_model(tmp_path / "m").eval()
    assert back.motion and back.input_spec.height == 48
    video = torch.rand(1, 16, 3, 48, 48, generator=rng)
    with torch.no_grad():
        assert torch.equal(model(video), back(video))
        assert torch.equal(model.frame_logits(video), back.frame_logits(video))

import numpy as np
import pytest
import torch

from vidshield import video as V


def test_check_video_accepts_single_and_batch():
    x = torch.rand(4, 3, 8, 8)
    assert V.check_video(x) is x
    assert V.check_batch(x.unsqueeze(0)).shape == (1, 4, 3, 8, 8)


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.zeros((2, 3, 4, 4)), "torch.Tensor"),
        (torch.rand(3, 8, 8), r"\(N, T, C, H, W\)"),
        (torch.zeros(2, 3, 4, 4, dtype=torch.uint8), "floating-point"),
        (torch.rand(2, 4, 8, 8), "3 RGB channels"),
        (torch.rand(0, 3, 8, 8), "empty"),
        (torch.rand(2, 3, 4, 4) * 255, r"\[0, 1\]"),
        (torch.full((2, 3, 4, 4), float("nan")), r"\[0, 1\]"),
    ],
)
def test_check_video_rejects_with_clear_message(bad, match):
    with pytest.raises(ValueError, match=match):
        V.check_video(bad)


def test_check_batch_requires_batch_dim():
    with pytest.raises(ValueError, match="batch"):
        V.check_batch(torch.rand(4, 3, 8, 8))


def test_uint8_float_round_trip_is_exact():
    frames = torch.arange(256, dtype=torch.uint8).reshape(1, 16, 16).expand(3, 16, 16).clone()
    assert torch.equal(V.to_uint8(V.to_float(frames)), frames)


def test_frames_tensor_round_trip_and_layout():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(5, 7, 9, 3), dtype=np.uint8)
    video = V.frames_to_tensor(frames)
    assert video.shape == (5, 3, 7, 9) and video.dtype == torch.float32
    assert float(video[2, 1, 3, 4]) == pytest.approx(frames[2, 3, 4, 1] / 255)
    assert np.array_equal(V.tensor_to_frames(video), frames)


def test_conversions_do_not_mutate_inputs():
    x = torch.rand(2, 3, 4, 4)
    before = x.clone()
    V.to_uint8(x)
    assert torch.equal(x, before)


def test_labels_and_mask_checks():
    V.check_labels(torch.tensor([0, 2]), 2, num_classes=3)
    with pytest.raises(ValueError, match="shape"):
        V.check_labels(torch.tensor([0, 1, 2]), 2)
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        V.check_labels(torch.tensor([0, 3]), 2, num_classes=3)
    with pytest.raises(ValueError, match="bool"):
        V.check_frame_mask(torch.zeros(2, 4), 2, 4)


def test_luma_weights_bt601():
    x = torch.zeros(1, 3, 2, 2)
    x[:, 1] = 1.0
    assert torch.allclose(V.rgb_to_luma(x), torch.full((1, 2, 2), 0.587))

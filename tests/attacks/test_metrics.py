import math

import pytest
import torch

from vidshield.attacks.metrics import perturbation_metrics


def test_metrics_of_a_hand_made_perturbation():
    clean = torch.full((1, 4, 3, 2, 2), 0.5)
    adv = clean.clone()
    adv[0, 1] += 0.1  # frame 1: 12 elements of +0.1 -> l2 = sqrt(12) * 0.1
    adv[0, 3, 0, 0, 0] -= 0.2  # frame 3: one element of -0.2 -> l2 = 0.2
    (m,) = perturbation_metrics(clean, adv)
    assert m["perturbed_frames"] == 2
    assert m["l21"] == pytest.approx(math.sqrt(12) * 0.1 + 0.2, rel=1e-6)
    assert m["linf"] == pytest.approx(0.2, rel=1e-6)
    total_abs = 12 * 0.1 + 0.2
    assert m["mean_abs_255"] == pytest.approx(total_abs / 48 * 255, rel=1e-6)
    mse = (12 * 0.01 + 0.04) / 48
    assert m["psnr"] == pytest.approx(10 * math.log10(1 / mse), rel=1e-6)


def test_metrics_of_no_change_and_single_video_layout():
    clean = torch.rand(3, 3, 4, 4)
    (m,) = perturbation_metrics(clean, clean.clone())
    assert m == {"perturbed_frames": 0, "l21": 0.0, "linf": 0.0, "mean_abs_255": 0.0, "psnr": math.inf}


def test_metrics_per_video_in_a_batch():
    clean = torch.zeros(2, 2, 3, 2, 2)
    adv = clean.clone()
    adv[1, 0] = 1.0
    first, second = perturbation_metrics(clean, adv)
    assert first["perturbed_frames"] == 0 and second["perturbed_frames"] == 1
    assert second["psnr"] == pytest.approx(10 * math.log10(2), rel=1e-6)


def test_metrics_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="same shape"):
        perturbation_metrics(torch.zeros(2, 3, 4, 4), torch.zeros(3, 3, 4, 4))

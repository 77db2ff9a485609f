"""The in-domain check: the profile's arithmetic on constructed statistics and its round trip
through the detector config (`scan`'s use of it: tests/eval/test_scan_defaults.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vidshield.detection import DetectorConfig
from vidshield.detection.domain import DOMAIN_QUANTILES, SHRINKAGE, DomainProfile, fit_domain


def _videos(n=40, frames=12, dim=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [
        (
            torch.randn(frames, dim, generator=g, dtype=torch.float64),
            torch.rand(frames, generator=g, dtype=torch.float64),
        )
        for _ in range(n)
    ]


def test_fit_domain_ranges_are_the_quantiles_of_the_per_video_statistics():
    videos = _videos()
    p = fit_domain(videos, embedding="frame_logits")
    x = np.concatenate([e.numpy() for e, _ in videos])
    cov = np.cov(x, rowvar=False)
    shrunk = (1 - SHRINKAGE) * cov + SHRINKAGE * np.trace(cov) / 3 * np.eye(3)
    np.testing.assert_allclose(np.asarray(p.precision), np.linalg.inv(shrunk), rtol=1e-6)
    np.testing.assert_allclose(p.mean, x.mean(0), rtol=1e-6, atol=1e-12)
    stats = [p.statistics(e, c) for e, c in videos]
    conf = [s["confidence"] for s in stats]
    assert p.ranges["confidence"] == pytest.approx(tuple(np.quantile(conf, DOMAIN_QUANTILES)))
    assert p.ranges["distance"] == (0.0, pytest.approx(np.quantile([s["distance"] for s in stats], 0.995)))
    assert (p.videos, p.frames) == (40, 480)
    # the median over frames: one video's frame confidences 0.1, 0.5, 0.9 -> 0.5
    assert p.statistics(torch.zeros(3, 3), torch.tensor([0.9, 0.1, 0.5]))["confidence"] == 0.5


def test_check_flags_each_statistic_out_of_its_range():
    ident = tuple(tuple(float(i == j) for j in range(2)) for i in range(2))
    p = DomainProfile("frame_logits", (0.0, 0.0), ident, {"confidence": (0.3, 0.8), "distance": (0.0, 2.0)}, 5, 50)
    # distance = median of |e| (identity precision): frames at distance 1, 1, 5 -> 1
    near = p.statistics(torch.tensor([[1.0, 0.0], [0.0, 1.0], [3.0, 4.0]]), torch.tensor([0.5, 0.5, 0.5]))
    assert near == {"confidence": 0.5, "distance": 1.0}
    assert p.check(near) == (True, [])
    assert p.check({"confidence": 0.8, "distance": 2.0})[0]  # the bounds are inside
    ok, reasons = p.check({"confidence": 0.95, "distance": 2.5})
    assert not ok and len(reasons) == 2 and reasons[0].startswith("confidence 0.95 outside")
    assert p.check({"confidence": 0.29, "distance": 0.0}) == (
        False,
        ["confidence 0.29 outside the calibrated [0.3, 0.8]"],
    )


def test_profile_round_trips_through_the_detector_config(tmp_path):
    p = fit_domain(_videos(n=5), embedding="frame_logits")
    cfg = DetectorConfig(gamma1=0.2, gamma2=0.3, target_fpr=0.01, domain=p.to_dict())
    loaded = DetectorConfig.load(cfg.save(tmp_path / "d.json"))
    assert loaded.domain_profile() == p
    assert DetectorConfig().domain_profile() is None
    bad = {**cfg.to_dict(), "domain": {**p.to_dict(), "mean": [0.0]}}
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    from vidshield.errors import InputFormatError

    with pytest.raises(InputFormatError, match="precision is not 1 x 1"):
        DetectorConfig.load(tmp_path / "bad.json")


def test_fit_domain_needs_two_videos():
    with pytest.raises(ValueError, match="at least 2 clean videos"):
        fit_domain(_videos(n=1))

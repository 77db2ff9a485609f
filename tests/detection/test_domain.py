"""The in-domain check: the profile's arithmetic on constructed statistics and its round trip
through the detector config (`scan`'s use of it: tests/eval/test_scan_defaults.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vidshield.detection import DetectorConfig
from vidshield.detection.domain import DOMAIN_QUANTILE, SHRINKAGE, DomainProfile, fit_domain


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
    for name in ("distance", "motion"):
        assert p.ranges[name] == (0.0, pytest.approx(np.quantile([s[name] for s in stats], DOMAIN_QUANTILE)))
    assert set(p.ranges) == {"distance", "motion"}  # confidence is reported, not checked
    assert (p.videos, p.frames) == (40, 480)
    # medians over frames: confidences 0.1, 0.5, 0.9 -> 0.5; steps between frames 0, 5 -> 2.5
    three = p.statistics(torch.tensor([[0.0, 0, 0], [0, 0, 0], [3, 4, 0]]), torch.tensor([0.9, 0.1, 0.5]))
    assert three["confidence"] == 0.5 and three["motion"] == 2.5
    assert p.statistics(torch.zeros(1, 3), torch.tensor([0.5]))["motion"] == 0.0


def test_check_flags_each_statistic_out_of_its_range():
    ident = tuple(tuple(float(i == j) for j in range(2)) for i in range(2))
    p = DomainProfile("frame_logits", (0.0, 0.0), ident, {"distance": (0.0, 2.0), "motion": (0.0, 3.0)}, 5, 50)
    # distance = median of |e| (identity precision): frames at distance 1, 1, 5 -> 1;
    # motion = median of the steps sqrt(2), sqrt(18) -> 2 sqrt(2)
    near = p.statistics(torch.tensor([[1.0, 0.0], [0.0, 1.0], [3.0, 4.0]]), torch.tensor([0.5, 0.5, 0.5]))
    assert near == {"distance": 1.0, "motion": pytest.approx(2 * 2**0.5), "confidence": 0.5}
    assert p.check(near) == (True, [])
    assert p.check({"distance": 2.0, "motion": 3.0, "confidence": 0.01})[0]  # the bounds are inside; confidence free
    ok, reasons = p.check({"distance": 2.5, "motion": 3.5})
    assert not ok and len(reasons) == 2 and reasons[0].startswith("distance 2.5 outside")
    assert p.check({"distance": 0.0, "motion": 3.01}) == (False, ["motion 3.01 outside the calibrated [0, 3]"])


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

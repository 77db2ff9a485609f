import math

import pytest
import torch

from vidshield.detection import CONSISTENCY_SCORES, compute_scores, exception_index


def test_registry_has_alpha_and_soft_scores():
    assert {"alpha", "flip_rate", "js_divergence", "consensus_deviation"} <= set(CONSISTENCY_SCORES)


def test_constant_logits_score_zero():
    logits = torch.randn(1, 1, 5).expand(3, 10, 5).clone()
    for name, value in compute_scores(logits).items():
        assert value.shape == (3,) and value.dtype == torch.float64
        assert torch.allclose(value, torch.zeros(3, dtype=torch.float64), atol=1e-12), name


def _one_hot_logits(labels, k=3, scale=50.0):
    return torch.nn.functional.one_hot(torch.as_tensor(labels), k).float().unsqueeze(0) * scale


def test_alpha_score_matches_exception_index():
    labels = torch.tensor([0, 0, 1, 0, 2, 2, 1, 2])
    assert float(compute_scores(_one_hot_logits(labels), ["alpha"])["alpha"][0]) == exception_index(labels)[0]


def test_flip_rate_counts_label_changes():
    # 0 0 1 1 0 0: two changes in five pairs; alpha is 0 here (runs of two are not exceptions).
    s = compute_scores(_one_hot_logits([0, 0, 1, 1, 0, 0]))
    assert float(s["flip_rate"][0]) == pytest.approx(2 / 5)
    assert float(s["alpha"][0]) == 0.0


def test_js_divergence_of_opposite_one_hots_approaches_one():
    # Alternating confident labels: every neighbour pair has JS close to 1 bit.
    s = compute_scores(_one_hot_logits([0, 1, 0, 1, 0], k=2, scale=60.0), ["js_divergence"])
    assert float(s["js_divergence"][0]) == pytest.approx(1.0, abs=1e-6)


def test_js_divergence_known_value():
    # p = (1, 0), q = (0.5, 0.5): JS = 0.5*KL(p||m) + 0.5*KL(q||m) with m = (0.75, 0.25), in bits.
    logits = torch.tensor([[[100.0, 0.0], [0.0, 0.0], [100.0, 0.0]]])
    m = (0.75, 0.25)
    js = 0.5 * math.log2(1 / m[0]) + 0.5 * (0.5 * math.log2(0.5 / m[0]) + 0.5 * math.log2(0.5 / m[1]))
    assert float(compute_scores(logits, ["js_divergence"])["js_divergence"][0]) == pytest.approx(js, abs=1e-9)


def test_consensus_deviation_known_value():
    # two frames (1,0), one frame (0,1): mean = (2/3, 1/3); TV distances 1/3, 1/3, 2/3 -> mean 4/9.
    logits = torch.tensor([[[100.0, 0.0], [0.0, 100.0], [100.0, 0.0]]])
    assert float(compute_scores(logits, ["consensus_deviation"])["consensus_deviation"][0]) == pytest.approx(4 / 9)


def test_scores_batched_equal_per_item():
    logits = torch.randn(4, 9, 5, generator=torch.Generator().manual_seed(1))
    batched = compute_scores(logits)
    for i in range(4):
        single = compute_scores(logits[i : i + 1])
        for name in batched:
            assert float(batched[name][i]) == pytest.approx(float(single[name][0]), abs=1e-12)


def test_bad_inputs():
    with pytest.raises(ValueError, match="unknown consistency score"):
        compute_scores(torch.zeros(1, 4, 2), ["nope"])
    with pytest.raises(ValueError, match="at least 3 frames"):
        compute_scores(torch.zeros(1, 2, 2))
    with pytest.raises(ValueError, match=r"\(N, T, K\)"):
        compute_scores(torch.zeros(4, 2))


def test_feature_spike_is_the_largest_interior_second_difference():
    from vidshield.detection.scores import FEATURE_SCORES

    t = torch.arange(10, dtype=torch.float64)[:, None]
    steady = (torch.tensor([[1.0, -2.0, 0.5, 3.0]], dtype=torch.float64) + t * 0.25)[None]  # constant speed
    assert float(FEATURE_SCORES["feature_spike"](steady)[0]) == 0.0
    spiked = steady.clone()
    spiked[0, 4] += torch.tensor([3.0, 0.0, 4.0, 0.0], dtype=torch.float64)  # one frame moved by |v| = 5
    # second differences: v at frame 4, -v/2 at frames 3 and 5
    assert float(FEATURE_SCORES["feature_spike"](spiked)[0]) == 5.0
    logits = torch.zeros(1, 10, 3)
    scores = compute_scores(logits, frame_features=spiked.float())
    assert set(scores) == set(CONSISTENCY_SCORES) | {"feature_spike"} and float(scores["feature_spike"][0]) == 5.0
    assert "feature_spike" not in compute_scores(logits)  # no features, no feature scores
    with pytest.raises(ValueError, match="frame features"):
        compute_scores(logits, ["feature_spike"])
    with pytest.raises(ValueError, match="differ in"):
        compute_scores(logits, frame_features=torch.zeros(1, 9, 4))

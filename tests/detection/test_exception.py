import pytest
import torch

from vidshield.detection import Detection, exception_index, exception_mask, route


def test_constant_labels_give_zero():
    alpha, mask = exception_index(torch.full((16,), 4))
    assert alpha == 0.0
    assert not mask.any()


@pytest.mark.parametrize("t, pos", [(16, 7), (16, 1), (16, 14), (3, 1)])
def test_single_flipped_frame_is_found_and_counted(t, pos):
    labels = torch.zeros(t, dtype=torch.int64)
    labels[pos] = 2
    alpha, mask = exception_index(labels)
    assert alpha == 1 / t
    assert mask.nonzero().flatten().tolist() == [pos]


@pytest.mark.parametrize("t", [3, 4, 7, 16, 40])
def test_alternating_sequence(t):
    labels = torch.arange(t) % 2
    alpha, mask = exception_index(labels)
    assert alpha == (t - 2) / t
    assert mask.tolist() == [False] + [True] * (t - 2) + [False]


@pytest.mark.parametrize("pos", [0, -1])
def test_boundary_frames_never_count(pos):
    labels = torch.zeros(10, dtype=torch.int64)
    labels[pos] = 1
    alpha, mask = exception_index(labels)
    assert alpha == 0.0 and not mask.any()


def test_two_adjacent_flips_are_not_exceptions():
    labels = torch.tensor([0, 0, 1, 1, 0, 0])
    alpha, mask = exception_index(labels)
    assert alpha == 0.0 and not mask.any()


def test_flip_between_two_different_labels_counts():
    # 0 1 2: the middle frame differs from both neighbours even though they differ too.
    assert exception_index(torch.tensor([0, 1, 2]))[0] == 1 / 3


def test_batched_equals_per_item():
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 3, (6, 12), generator=g)
    alpha, mask = exception_index(labels)
    assert alpha.dtype == torch.float64 and alpha.shape == (6,)
    for i in range(6):
        a_i, m_i = exception_index(labels[i])
        assert float(alpha[i]) == a_i
        assert torch.equal(mask[i], m_i)


def test_accepts_lists_and_does_not_mutate():
    labels = torch.tensor([0, 1, 0, 0])
    before = labels.clone()
    assert exception_mask(labels).tolist() == [False, True, False, False]
    assert torch.equal(labels, before)
    assert exception_index([0, 1, 0, 0])[0] == 0.25


@pytest.mark.parametrize(
    "bad, msg",
    [
        (torch.tensor([0, 1]), "at least 3 frames"),
        (torch.zeros(2, 2, dtype=torch.int64), "at least 3 frames"),
        (torch.zeros(5), "integer"),
        (torch.zeros(5, dtype=torch.bool), "integer"),
        (torch.zeros(2, 3, 4, dtype=torch.int64), "shape"),
    ],
)
def test_bad_input(bad, msg):
    with pytest.raises(ValueError, match=msg):
        exception_index(bad)


def test_route_boundaries():
    assert route(0.0, 0.175, 0.3) == "clean"
    assert route(0.17499, 0.175, 0.3) == "clean"
    assert route(0.175, 0.175, 0.3) == "sparse"
    assert route(7 / 40, 0.175, 0.3) == "sparse"  # 7 exceptions in 40 frames hits gamma1 exactly
    assert route(0.29999, 0.175, 0.3) == "sparse"
    assert route(0.3, 0.175, 0.3) == "dense"
    assert route(1.0, 0.175, 0.3) == "dense"
    assert route(0.2, 0.2, 0.2) == "dense"  # equal thresholds leave no sparse band


@pytest.mark.parametrize("g1, g2", [(0.3, 0.2), (-0.1, 0.2), (float("nan"), 0.3), (0.1, float("inf"))])
def test_route_rejects_bad_thresholds(g1, g2):
    with pytest.raises(ValueError):
        route(0.1, g1, g2)


def test_detection_dataclass():
    d = Detection(alpha=0.25, verdict="sparse", frame_labels=torch.tensor([0, 1, 0, 0]), exception_frames=[1])
    assert d.frame_labels == (0, 1, 0, 0) and d.score == 0.25 and d.num_frames == 4
    assert d.to_dict()["exception_frames"] == [1]
    with pytest.raises(ValueError, match="verdict"):
        Detection(alpha=0.0, verdict="benign", frame_labels=[0, 0, 0], exception_frames=[])
    with pytest.raises(Exception):
        d.alpha = 0.0  # frozen

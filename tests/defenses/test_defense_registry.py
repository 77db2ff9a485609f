"""The defense registry and the one Defense signature every defense implements."""

import pytest
import torch
from tests.conftest import make_moving_video

from vidshield.defenses import DEFENSES, Defense, create_defense, defense_defaults
from vidshield.defenses.h264 import H264Defense
from vidshield.defenses.spatial import BitDepthDefense, JpegDefense, MedianDefense, SpatialDefense
from vidshield.defenses.temporal import TemporalDefense
from vidshield.errors import VidshieldError

BUILT_IN = {
    "temporal": (TemporalDefense, {"qp": 36, "block": 8, "search": 7}),
    "spatial": (SpatialDefense, {}),
    "jpeg": (JpegDefense, {"quality": 75}),
    "median": (MedianDefense, {"kernel": 3}),
    "bitdepth": (BitDepthDefense, {"bits": 4}),
    "h264": (H264Defense, {"crf": 28}),
}


@pytest.fixture(scope="module")
def video():
    return torch.stack([make_moving_video(frames=6, height=32, width=48, seed=s) for s in (0, 1)])


def test_built_in_names_classes_and_defaults():
    assert set(DEFENSES) == set(BUILT_IN)
    for name, (cls, defaults) in BUILT_IN.items():
        assert defense_defaults(name) == defaults
        d = create_defense(name)
        assert type(d) is cls and isinstance(d, Defense)
        for k, v in defaults.items():
            assert getattr(d, k) == v
    assert create_defense("jpeg", quality=30).quality == 30  # keyword arguments override
    with pytest.raises(VidshieldError, match="unknown defense 'blur'.*temporal"):
        create_defense("blur")


@pytest.mark.parametrize("name", sorted(set(BUILT_IN) - {"temporal"}))
def test_spatial_defenses_purify_only_the_marked_frames(name, video, monkeypatch):
    import vidshield.defenses.h264 as h264

    encodes = {}  # libx264 is not bit-reproducible from call to call: both calls see one encode per video
    roundtrip = h264.h264_roundtrip
    monkeypatch.setattr(
        h264, "h264_roundtrip", lambda v, **kw: encodes.setdefault(v.numpy().tobytes(), roundtrip(v, **kw))
    )
    defense = create_defense(name)
    mask = torch.zeros(2, 6, dtype=torch.bool)
    mask[0, [1, 4]] = True
    mask[1, 2] = True
    whole = defense(video, generator=torch.Generator().manual_seed(0))
    marked = defense(video, polluted=mask, generator=torch.Generator().manual_seed(0))
    assert torch.equal(marked[~mask], video[~mask])  # unmarked frames bit-identical
    assert not torch.equal(whole, video)
    if defense.frame_wise:  # a frame-wise defense gives each marked frame what it gives it whole
        assert torch.allclose(marked[mask], whole[mask], atol=1e-6)
    else:  # H.264 encodes the whole video and keeps the marked frames
        assert torch.equal(marked[mask], whole[mask])
    assert torch.equal(defense(video, polluted=torch.zeros_like(mask)), video)


def test_temporal_needs_a_mask_and_takes_the_same_keywords(video):
    defense = create_defense("temporal")
    with pytest.raises(ValueError, match="polluted mask"):
        defense(video)
    mask = torch.zeros(2, 6, dtype=torch.bool)
    mask[:, 3] = True
    out = defense(video, polluted=mask, generator=torch.Generator())
    assert torch.equal(out[~mask], video[~mask])
    assert torch.equal(defense.bpda(video, polluted=mask), out)


def test_bpda_forward_and_surrogate_share_the_random_draws(video):
    """ComDefend with test-time noise: bpda's value equals forward's for the same seed."""
    defense = create_defense("spatial", test_noise=1.0)
    x = video.clone().requires_grad_(True)
    value = defense.bpda(x, generator=torch.Generator().manual_seed(3))
    expected = defense(video, generator=torch.Generator().manual_seed(3))
    assert torch.equal(value.detach(), expected)
    value.sum().backward()
    assert x.grad.abs().sum() > 0

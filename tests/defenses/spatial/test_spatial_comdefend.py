"""ComDefend model and the SpatialDefense module: codes, shapes, tiling, determinism, BPDA, loading."""

from __future__ import annotations

import pytest
import torch

from vidshield.checkpoint import save_checkpoint
from vidshield.defenses.spatial import ComDefend, SpatialDefense, binarize_code, load_comdefend, purify_frames
from vidshield.defenses.spatial.comdefend import (
    COMCNN_CHANNELS,
    RECCNN_CHANNELS,
    frames_to_tiles,
    macs_per_pixel,
    tiles_to_frames,
)
from vidshield.errors import CheckpointError

RECEPTIVE_RADIUS = 18  # 18 stacked 3x3 convolutions


@pytest.fixture(scope="module")
def model() -> ComDefend:
    torch.manual_seed(0)
    return ComDefend().eval()


@pytest.fixture
def defense(model) -> SpatialDefense:
    return SpatialDefense(model=model, dtype="float32", batch_frames=3)


def test_architecture_sizes():
    m = ComDefend()
    com = sum(p.numel() for p in m.comcnn.parameters())
    rec = sum(p.numel() for p in m.reccnn.parameters())
    assert com == 782_640 + sum(COMCNN_CHANNELS[1:])  # weights + biases
    assert rec == 782_640 + sum(RECCNN_CHANNELS[1:])
    flop_per_pixel = 2 * (macs_per_pixel(COMCNN_CHANNELS) + macs_per_pixel(RECCNN_CHANNELS))
    assert flop_per_pixel == pytest.approx(3.13e6, rel=1e-3)
    assert not any(isinstance(layer, torch.nn.BatchNorm2d) for layer in m.modules())


def test_code_is_binary_with_12_channels(model, rng):
    x = torch.rand(2, 3, 9, 13, generator=rng)
    with torch.no_grad():
        code = model.encode(x)
        bits = model.binarize(code)
    assert code.shape == (2, 12, 9, 13)
    assert set(bits.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(bits, (code > 0).float())


def test_binarize_noise_is_seeded_and_random():
    code = torch.linspace(-3, 3, 600).reshape(2, 12, 5, 5)
    a = binarize_code(code, noise_sigma=1.0, generator=torch.Generator().manual_seed(1))
    b = binarize_code(code, noise_sigma=1.0, generator=torch.Generator().manual_seed(1))
    c = binarize_code(code, noise_sigma=1.0, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(binarize_code(code), (code > 0).float())
    with pytest.raises(ValueError, match="noise_sigma"):
        binarize_code(code, noise_sigma=-1.0)


def test_training_forward_outputs(model, rng):
    x = torch.rand(2, 3, 8, 8, generator=rng)
    with torch.no_grad():
        out = model(x, generator=torch.Generator().manual_seed(0))
        out0 = model(x, train_noise_sigma=0.0)
    assert set(out) == {"linear", "code", "rec"}
    assert out["code"].shape == (2, 12, 8, 8) and out["rec"].shape == x.shape
    assert float(out["code"].min()) >= 0 and float(out["code"].max()) <= 1
    # sigma = 0 reduces the training code to sigmoid(linear)
    assert torch.allclose(out0["code"], torch.sigmoid(out0["linear"]))


def test_tiles_round_trip_exactly(rng):
    frames = torch.rand(2, 3, 37, 45, generator=rng)
    tiles, grid = frames_to_tiles(frames, 16)
    assert tiles.shape == (2 * 3 * 3, 3, 16, 16) and grid == (3, 3)
    assert torch.equal(tiles_to_frames(tiles, grid, (37, 45)), frames)


@pytest.mark.parametrize("tile", [None, 8])
def test_shape_and_range_kept_on_odd_sizes(defense, rng, tile):
    defense.tile = tile
    video = torch.rand(1, 2, 3, 15, 21, generator=rng)
    out = defense(video)
    assert out.shape == video.shape and out.dtype == torch.float32
    assert float(out.min()) >= 0 and float(out.max()) <= 1
    # the defense is ComDefend's purification of each frame (whole or in tiles), not a pass-through
    with torch.no_grad():
        expected = purify_frames(defense.model, video[0], tile=tile)
    assert torch.allclose(out[0], expected, atol=1e-5)
    assert float((out - video).abs().mean()) > 0.01


def test_input_not_mutated_and_deterministic(defense, rng):
    video = torch.rand(1, 2, 3, 12, 12, generator=rng)
    before = video.clone()
    a, b = defense(video), defense(video)
    assert torch.equal(video, before)
    assert torch.equal(a, b)


def test_batch_equals_items(defense, rng):
    video = torch.rand(2, 2, 3, 12, 16, generator=rng)
    batch = defense(video)
    items = torch.cat([defense(video[i : i + 1]) for i in range(2)])
    assert torch.allclose(batch, items, atol=1e-5)


def test_test_noise_is_random_and_seeded(model, rng):
    noisy = SpatialDefense(model=model, dtype="float32", test_noise=1.0)
    video = torch.rand(1, 2, 3, 12, 12, generator=rng)
    a = noisy(video, generator=torch.Generator().manual_seed(5))
    b = noisy(video, generator=torch.Generator().manual_seed(5))
    c = noisy(video, generator=torch.Generator().manual_seed(6))
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_tiled_and_whole_frame_agree_away_from_tile_seams(model, rng):
    frames = torch.rand(1, 3, 40, 80, generator=rng)
    with torch.no_grad():
        whole = purify_frames(model, frames)
        tiled = purify_frames(model, frames, tile=40)
    far = torch.cat([torch.arange(0, 40 - RECEPTIVE_RADIUS), torch.arange(40 + RECEPTIVE_RADIUS, 80)])
    assert torch.allclose(whole[..., far], tiled[..., far], atol=1e-5)
    seam = torch.arange(36, 44)
    assert (whole[..., seam] - tiled[..., seam]).abs().max() > 1e-4  # the zero padding at tile borders shows


def test_surrogate_matches_forward_and_passes_gradients(defense, rng):
    video = torch.rand(1, 2, 3, 10, 10, generator=rng)
    x = video.clone().requires_grad_(True)
    approx = defense.surrogate(x)
    assert torch.allclose(approx, defense(video), atol=1e-6)
    approx.square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    y = video.clone().requires_grad_(True)
    purified = defense.bpda(y)
    assert torch.equal(purified.detach(), defense(video))
    purified.sum().backward()
    assert y.grad.abs().sum() > 0


def test_bfloat16_path_runs(model, rng):
    video = torch.rand(1, 1, 3, 12, 12, generator=rng)
    out = SpatialDefense(model=model, dtype="bfloat16")(video)
    assert out.shape == video.shape and out.dtype == torch.float32
    assert float(out.min()) >= 0 and float(out.max()) <= 1


def test_constructor_and_input_errors(model, tmp_path):
    with pytest.raises(ValueError, match="either weights or model"):
        SpatialDefense(weights="x", model=model)
    with pytest.raises(ValueError, match="tile"):
        SpatialDefense(model=model, tile=2)
    with pytest.raises(ValueError, match="test_noise"):
        SpatialDefense(model=model, test_noise=-0.1)
    with pytest.raises(ValueError, match="dtype"):
        SpatialDefense(model=model, dtype="float16")
    with pytest.raises(ValueError, match="ComDefend"):
        SpatialDefense(model=torch.nn.Conv2d(3, 3, 1))
    with pytest.raises(ValueError, match=r"\(N, T, C, H, W\)"):
        SpatialDefense(model=model)(torch.rand(2, 3, 8, 8))
    with pytest.raises(CheckpointError, match="not found"):
        SpatialDefense(weights=tmp_path / "missing")


def test_checkpoint_round_trip_and_wrong_architecture(model, tmp_path, rng):
    save_checkpoint(tmp_path / "cd", model.state_dict(), {"architecture": "comdefend"})
    _loaded, meta = load_comdefend(tmp_path / "cd")
    assert meta["architecture"] == "comdefend"
    video = torch.rand(1, 1, 3, 8, 8, generator=rng)
    a = SpatialDefense(model=model, dtype="float32")(video)
    b = SpatialDefense(weights=tmp_path / "cd.safetensors", dtype="float32")(video)
    assert torch.equal(a, b)
    save_checkpoint(tmp_path / "other", model.state_dict(), {"architecture": "c3d"})
    with pytest.raises(CheckpointError, match="not a ComDefend checkpoint"):
        load_comdefend(tmp_path / "other")
    save_checkpoint(tmp_path / "bad", {"w": torch.zeros(1)}, {"architecture": "comdefend"})
    with pytest.raises(CheckpointError, match="does not match"):
        load_comdefend(tmp_path / "bad")


def test_missing_default_weights_say_how_to_train(monkeypatch, tmp_path):
    import vidshield.models.checkpoints as checkpoints

    monkeypatch.setattr(checkpoints, "zoo_dir", lambda: tmp_path)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CheckpointError, match="ComDefend weights 'comdefend' not found.*train-comdefend"):
        SpatialDefense()

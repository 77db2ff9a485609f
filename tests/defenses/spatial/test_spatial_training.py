"""Training ComDefend: the crop sampler, the loss going down, checkpoints and exact resume."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from vidshield.checkpoint import last_state_path, load_checkpoint
from vidshield.defenses.spatial import ComDefend, FrameCropSampler, SpatialDefense, evaluate_psnr, psnr, train_comdefend
from vidshield.errors import DataRootError


def smooth_clips(
    count: int, *, frames: int = 4, size: int = 24, seed: int = 0, level: float = 0.2
) -> list[torch.Tensor]:
    """Smooth random clips ``(frames, 3, size, size)`` around a dark grey ``level``."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(count):
        coarse = torch.rand(frames, 3, 4, 4, generator=g) * 0.2 + level
        out.append(F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False))
    return out


def test_sampler_crops_are_slices_of_pool_frames():
    pool = torch.randint(0, 256, (5, 10, 12, 3), dtype=torch.uint8)
    sampler = FrameCropSampler([pool], crop=4)
    crops = sampler.sample(16, generator=torch.Generator().manual_seed(0))
    assert crops.shape == (16, 3, 4, 4) and crops.dtype == torch.float32
    frames = pool.permute(0, 3, 1, 2).float() / 255
    for crop in crops:
        found = any(
            torch.equal(frames[n, :, y : y + 4, x : x + 4], crop) for n in range(5) for y in range(7) for x in range(9)
        )
        assert found
    again = sampler.sample(16, generator=torch.Generator().manual_seed(0))
    assert torch.equal(crops, again)


def test_sampler_mixed_sizes_split_save_load(tmp_path):
    clips = [torch.rand(4, 3, 8, 8), torch.rand(6, 3, 10, 12), torch.rand(2, 3, 8, 8)]
    sampler = FrameCropSampler.from_clips(clips, crop=8)
    assert sampler.num_frames == 12 and len(sampler.pools) == 2 and sampler.max_crop == 8
    assert sampler.sample(7).shape == (7, 3, 8, 8)
    train, held = sampler.split(0.5)
    assert train.num_frames + held.num_frames == 12
    assert torch.equal(held.pools[1], sampler.pools[1][3:])
    loaded = FrameCropSampler.load(sampler.save(tmp_path / "f.safetensors"), crop=8)
    assert all(torch.equal(a, b) for a, b in zip(loaded.pools, sampler.pools))


def test_sampler_errors(tmp_path):
    with pytest.raises(ValueError, match="larger than the smallest frame side 8"):
        FrameCropSampler([torch.zeros(1, 8, 9, 3, dtype=torch.uint8)]).sample(2, crop=9)
    with pytest.raises(ValueError, match="larger than the smallest training frame side"):
        train_comdefend([torch.rand(2, 3, 8, 8)], steps=1, crop=16)
    with pytest.raises(ValueError, match="uint8"):
        FrameCropSampler([torch.zeros(1, 8, 8, 3)])
    with pytest.raises(ValueError, match="empty"):
        FrameCropSampler([])
    with pytest.raises(DataRootError, match="not found"):
        FrameCropSampler.load(tmp_path / "none.safetensors")
    (tmp_path / "bad.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(DataRootError, match="not a safetensors"):
        FrameCropSampler.load(tmp_path / "bad.safetensors")


def test_psnr_values():
    a = torch.zeros(2, 3, 4, 4)
    b = a.clone()
    b[1] += 0.1
    values = psnr(b, a)
    assert values[1] == pytest.approx(20.0, abs=1e-4)
    assert values[0] == pytest.approx(100.0)  # MSE floor 1e-10


def test_short_training_lowers_the_loss(tmp_path):
    clips = smooth_clips(3, level=0.15)
    val = torch.cat(smooth_clips(1, seed=1, level=0.15))
    before = evaluate_psnr(ComDefend(), val[:, :, :16, :16])["psnr_db"]
    result = train_comdefend(
        clips,
        val_source=[val],
        steps=15,
        batch_size=4,
        crop=8,
        lr=2e-3,
        amp=False,
        val_every=15,
        val_crops=4,
        val_crop=16,
        out=tmp_path / "cd",
        seed=0,
    )
    assert result.step == 15 and len(result.losses) == 15
    assert sum(result.losses[-5:]) / 5 < 0.5 * sum(result.losses[:3]) / 3
    assert result.best_psnr_db > before + 3.0
    meta = json.loads((tmp_path / "cd.json").read_text())
    assert meta["architecture"] == "comdefend" and "CIFAR-10" in meta["training_data_note"]
    assert meta["metrics"]["val_psnr_db"] == pytest.approx(result.best_psnr_db)
    assert SpatialDefense(weights=tmp_path / "cd").model is not None


def test_resume_reproduces_an_uninterrupted_run(tmp_path):
    clips = smooth_clips(2, size=8)
    kwargs = dict(batch_size=2, crop=4, amp=False, val_every=100, val_crops=2, val_crop=8, seed=3)
    straight = train_comdefend(clips, steps=4, out=tmp_path / "a", **kwargs)
    train_comdefend(clips, steps=2, out=tmp_path / "b", **kwargs)
    resumed = train_comdefend(clips, steps=4, out=tmp_path / "b", resume=True, **kwargs)
    assert resumed.step == 4 and len(resumed.losses) == 2
    assert resumed.losses == straight.losses[2:]
    for (name, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name
    state, meta = load_checkpoint(last_state_path(tmp_path / "b"))
    assert meta["step"] == 4 and "rng.crops" in state and any(k.startswith("optimizer.") for k in state)


def test_resume_refuses_a_different_objective(tmp_path):
    from vidshield.errors import CheckpointError

    clips = smooth_clips(2, size=8)
    kwargs = dict(batch_size=2, crop=4, amp=False, val_every=100, val_crops=2, val_crop=8)
    train_comdefend(clips, steps=1, out=tmp_path / "c", **kwargs)
    with pytest.raises(CheckpointError, match="sigma"):
        train_comdefend(clips, steps=2, out=tmp_path / "c", resume=True, sigma=5.0, **kwargs)


def test_train_argument_errors():
    clips = smooth_clips(1, size=8)
    with pytest.raises(ValueError, match="resume needs out"):
        train_comdefend(clips, steps=1, resume=True)
    with pytest.raises(ValueError, match="batch_size"):
        train_comdefend(clips, steps=1, batch_size=0)


def test_from_dataset_spreads_the_clips_it_decodes_over_the_whole_set():
    from vidshield.io import uniform_indices

    class Numbered(torch.utils.data.Dataset):  # clip i is filled with the value i / 255
        def __len__(self):
            return 37

        def __getitem__(self, i):
            return torch.full((1, 3, 8, 8), i / 255), 0

    sampler = FrameCropSampler.from_dataset(Numbered(), crop=4, max_clips=5)
    (pool,) = sampler.pools
    assert pool[:, 0, 0, 0].tolist() == uniform_indices(37, 5).tolist() == [0, 9, 18, 27, 36]


def test_init_starts_from_given_weights_and_resumes_exactly(tmp_path):
    from vidshield.errors import CheckpointError

    clips = smooth_clips(2, size=8)
    kwargs = dict(batch_size=2, crop=4, amp=False, val_every=100, val_crops=2, val_crop=8, seed=3)
    start = train_comdefend(
        clips, steps=1, out=tmp_path / "start", seed=7, **{k: v for k, v in kwargs.items() if k != "seed"}
    )
    init = tmp_path / "start"
    same = train_comdefend(clips, steps=0, init=init, **kwargs)  # no step: exactly the init weights
    for (name, a), b in zip(start.model.state_dict().items(), same.model.state_dict().values()):
        assert torch.equal(a, b), name
    straight = train_comdefend(clips, steps=4, init=init, out=tmp_path / "a", **kwargs)
    again = train_comdefend(clips, steps=4, init=init, **kwargs)
    assert again.losses == straight.losses  # deterministic for a seed
    train_comdefend(clips, steps=2, init=init, out=tmp_path / "b", **kwargs)
    resumed = train_comdefend(clips, steps=4, init=init, out=tmp_path / "b", resume=True, **kwargs)
    assert resumed.losses == straight.losses[2:]
    for (name, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name
    assert json.loads((tmp_path / "a.json").read_text())["training"]["init"] == str(init)
    with pytest.raises(CheckpointError, match="init"):
        train_comdefend(clips, steps=5, out=tmp_path / "b", resume=True, **kwargs)  # started from init

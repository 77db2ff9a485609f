import pytest
import torch

from vidshield.checkpoint import checkpoint_paths, load_checkpoint, save_checkpoint
from vidshield.errors import CheckpointError


def test_round_trip(tmp_path):
    state = {"w": torch.randn(3, 4), "b": torch.arange(5)}
    path = save_checkpoint(tmp_path / "m", state, {"arch": "x", "classes": ["a", "b"]})
    loaded, meta = load_checkpoint(path)
    assert meta == {"arch": "x", "classes": ["a", "b"]}
    assert set(loaded) == {"w", "b"} and all(torch.equal(loaded[k], state[k]) for k in state)


def test_paths_accept_any_suffix(tmp_path):
    assert checkpoint_paths(tmp_path / "m.json") == checkpoint_paths(tmp_path / "m.safetensors")


def test_missing_and_corrupt_give_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope")
    path = save_checkpoint(tmp_path / "m", {"w": torch.ones(2)}, {})
    path.write_bytes(b"\x00" * 7)
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(path)
    path.with_suffix(".json").write_text("{not json")
    with pytest.raises(CheckpointError, match="JSON"):
        load_checkpoint(path)


def test_pickle_file_is_refused(tmp_path):
    torch.save({"w": torch.ones(2)}, tmp_path / "m.safetensors")  # a pickle under a safetensors name
    (tmp_path / "m.json").write_text("{}")
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "m")


def test_training_state_round_trip_restores_everything_exactly(tmp_path):
    import json

    from vidshield.checkpoint import TRAINING_STATE_FORMAT, last_state_path, load_training_state, save_training_state

    def run(model, opt, sched, rng, steps):
        for _ in range(steps):
            model(torch.rand(4, 3, generator=rng)).square().sum().backward()
            opt.step()
            sched.step()
            opt.zero_grad()

    def build(seed):
        torch.manual_seed(seed)
        model = torch.nn.Linear(3, 2)
        opt = torch.optim.AdamW(model.parameters(), lr=0.01, betas=(0.8, 0.9))
        return model, opt, torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10), torch.Generator().manual_seed(1)

    a = build(0)
    run(*a, 3)
    path = last_state_path(tmp_path / "run.safetensors")
    assert path == tmp_path / "run-last.safetensors"
    save_training_state(path, model=a[0], optimizer=a[1], scheduler=a[2], generators={"g": a[3]}, metadata={"epoch": 3})
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["format"] == TRAINING_STATE_FORMAT and meta["epoch"] == 3
    b = build(7)  # other weights, fresh optimizer and schedule, another generator state
    b[3].manual_seed(99)
    seen = []
    assert load_training_state(
        path, model=b[0], optimizer=b[1], scheduler=b[2], generators={"g": b[3]}, check=seen.append
    )
    assert seen[0]["epoch"] == 3 and b[1].param_groups[0]["betas"] == (0.8, 0.9)
    run(*a, 2)
    run(*b, 2)  # both continue identically: weights, moments, schedule and random draws restored
    for x, y in zip(a[0].parameters(), b[0].parameters()):
        assert torch.equal(x, y)
    assert a[2].get_last_lr() == b[2].get_last_lr()

    def refuse(meta):
        raise CheckpointError("other settings")

    with pytest.raises(CheckpointError, match="other settings"):
        load_training_state(path, model=b[0], optimizer=b[1], check=refuse)
    with pytest.raises(CheckpointError, match="rng.h"):
        load_training_state(path, model=b[0], optimizer=b[1], generators={"h": torch.Generator()})
    with pytest.raises(CheckpointError, match="cannot resume"):
        load_training_state(path, model=torch.nn.Linear(3, 5), optimizer=b[1])
    save_checkpoint(tmp_path / "w", {"w": torch.ones(1)}, {"format": "x"})
    with pytest.raises(CheckpointError, match="not a training state"):
        load_training_state(tmp_path / "w", model=b[0], optimizer=b[1])

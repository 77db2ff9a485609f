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

import json

import pytest
import torch

from vidshield.errors import CheckpointError
from vidshield.models import checkpoints, create_model, list_shipped, load_model, save_model


@pytest.mark.parametrize("name", ["test-c3d", "test-lrcn"])
def test_save_then_load_gives_identical_outputs(tmp_path, rng, name):
    torch.manual_seed(3)
    model = create_model(name, num_classes=3).eval()
    path = save_model(model, tmp_path / "m", metadata={"class_names": ["a", "b", "c"], "dataset": {"name": "x"}})
    assert path.name == "m.safetensors" and (tmp_path / "m.json").is_file()
    loaded = load_model(tmp_path / "m.json")
    assert not loaded.training and loaded.class_names == ["a", "b", "c"] and loaded.arch_name == name
    meta = json.loads((tmp_path / "m.json").read_text())
    assert meta["architecture"] == name and meta["input_spec"]["frames"] == 16 and "torch_version" in meta
    video = torch.rand(2, 16, 3, 32, 32, generator=rng)
    with torch.no_grad():
        assert torch.equal(model(video), loaded(video))


def test_overrides_survive_the_round_trip(tmp_path):
    model = create_model("test-c3d", num_classes=2, input_size=(16, 48, 48))
    save_model(model, tmp_path / "m")
    assert load_model(tmp_path / "m").input_spec.height == 48


def _saved(tmp_path, num_classes=3):
    save_model(create_model("test-c3d", num_classes=num_classes), tmp_path / "m")
    return tmp_path / "m.json"


def test_mismatched_class_count_names_the_shapes(tmp_path):
    meta_path = _saved(tmp_path)
    meta = json.loads(meta_path.read_text())
    meta["num_classes"] = 6
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(
        CheckpointError,
        match=r"do not fit test-c3d with 6 classes: shape mismatch.*classifier\.6\.weight \(3, 128\) vs \(6, 128\)",
    ):
        load_model(meta_path)


def test_other_architecture_names_missing_keys(tmp_path):
    meta_path = _saved(tmp_path)
    meta = json.loads(meta_path.read_text())
    meta["architecture"] = "test-lrcn"
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="do not fit test-lrcn with 3 classes: missing keys"):
        load_model(meta_path)
    meta["architecture"] = "resnet"
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="unknown architecture 'resnet'"):
        load_model(meta_path)


def test_corrupt_missing_and_foreign_files(tmp_path):
    meta_path = _saved(tmp_path)
    weights = tmp_path / "m.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="corrupt"):
        load_model(weights)
    with pytest.raises(CheckpointError, match="model 'nope' not found: tried nope.safetensors, nope.json"):
        load_model("nope")
    meta_path = _saved(tmp_path)
    meta_path.write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(CheckpointError, match="not a vidshield model checkpoint"):
        load_model(meta_path)


def test_shipped_names_resolve_through_the_zoo(tmp_path, monkeypatch, rng):
    model = create_model("test-lrcn", num_classes=2).eval()
    save_model(model, tmp_path / "tiny-demo", metadata={"dataset": {"name": "blobs"}, "metrics": {"test_top1": 1.0}})
    monkeypatch.setattr(checkpoints, "zoo_dir", lambda: tmp_path)
    rows = list_shipped()
    assert [r["name"] for r in rows] == ["tiny-demo"]
    assert rows[0]["architecture"] == "test-lrcn" and rows[0]["metrics"]["test_top1"] == 1.0
    video = torch.rand(1, 16, 3, 32, 32, generator=rng)
    with torch.no_grad():
        assert torch.equal(load_model("tiny-demo")(video), model(video))


def test_every_shipped_checkpoint_loads_and_runs():
    rows = list_shipped()
    if not rows:
        pytest.skip("no checkpoints shipped in src/vidshield/zoo yet")
    for row in rows:
        model = load_model(row["name"])
        spec = model.input_spec
        assert row["size_bytes"] < 20e6
        assert model.class_names is not None and len(model.class_names) == model.num_classes
        assert "command" in model.metadata and "test_top1" in model.metadata["metrics"]
        with torch.no_grad():
            assert model(torch.rand(1, spec.frames, 3, spec.height, spec.width)).shape == (1, model.num_classes)


def test_one_resolver_for_paths_stems_and_shipped_names(tmp_path, monkeypatch):
    from vidshield.checkpoint import save_checkpoint
    from vidshield.models import resolve_artifact

    zoo, here = tmp_path / "zoo", tmp_path / "here"
    zoo.mkdir(), here.mkdir()
    monkeypatch.setattr(checkpoints, "zoo_dir", lambda: zoo)
    monkeypatch.chdir(here)
    shipped = save_checkpoint(zoo / "thing", {"w": torch.zeros(1)}, {})
    local = save_checkpoint(here / "mine", {"w": torch.ones(1)}, {})
    for ref in (local, here / "mine", here / "mine.json", "mine", "mine.safetensors"):
        assert resolve_artifact(ref, kind="x").resolve() == local.resolve(), ref
    assert resolve_artifact("thing", kind="x") == shipped
    assert resolve_artifact("thing.json", kind="x") == shipped
    save_checkpoint(here / "thing", {"w": torch.ones(1)}, {})  # an existing path wins over the zoo
    assert resolve_artifact("thing", kind="x").resolve() == (here / "thing.safetensors").resolve()
    with pytest.raises(CheckpointError) as e:
        resolve_artifact("nope", kind="widget", hint="Make one.")
    assert str(e.value) == (
        f"widget 'nope' not found: tried nope.safetensors, nope.json, {zoo / 'nope.safetensors'} (shipped: thing). Make one."
    )
    with pytest.raises(CheckpointError, match=r"tried sub/nope.safetensors, sub/nope.json \(shipped"):
        resolve_artifact("sub/nope", kind="widget")  # not a bare name: the zoo is not tried

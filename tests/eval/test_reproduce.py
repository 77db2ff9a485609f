"""The reproduction runs end to end in a reduced configuration, resumes, and the demo/scan
commands run in process, all on tiny models made here."""

import json

import pytest
from tests.eval.golden import check_golden

from vidshield.eval.reproduce import ReproduceConfig, reproduce


def small_config(models, **kw):
    return ReproduceConfig(
        dataset="synthetic",
        num_test=6,
        sparse_frames=3,
        sparse_steps=3,
        dense_steps=3,
        dense_train_clips=4,
        batch_size=3,
        **models,
        **kw,
    )


def test_reproduce_end_to_end_and_resume(tiny_models, tmp_path):
    out = tmp_path / "run"
    res = reproduce(small_config(tiny_models, extra_defenses=("h264", "bitdepth")), out, command="test")
    # Tables 3 and 4 pinned (tests/expected/reproduce-tiny.json; H.264 left out: it depends on libx264)
    table3 = {
        m: {s: {d: v for d, v in row.items() if d != "h264"} for s, row in t.items()} for m, t in res["table3"].items()
    }
    check_golden("reproduce-tiny.json", {"table3": table3, "table4": res["table4"], "counts": res["counts"]})
    assert set(res["table3"]) == {"lrcn", "c3d"}
    assert set(res["table3"]["c3d"]["dense"]) == {
        "none",
        "spatial",
        "temporal",
        "temporal-minority",
        "h264",
        "bitdepth",
    }
    assert res["counts"]["test_clips"] == 6
    saved = json.loads((out / "results.json").read_text())
    assert saved["seed"] == 0 and saved["config"]["num_test"] == 6 and saved["command"] == "test"
    assert (out / "report.md").read_text().startswith("# vidshield reproduction: synthetic")
    for name in ("fig2_alpha.png", "fig3_labels.png", "fig7_examples.png"):
        assert (out / "figures" / name).stat().st_size > 1000
    # the dense perturbation keeps its budget
    from vidshield.io import load_clips

    clean, _, _ = load_clips(out / "sets" / "clean.safetensors")
    dense, _, _ = load_clips(out / "sets" / "dense.safetensors")
    assert float((dense - clean).abs().max()) <= 10 / 255 + 1 / 255
    # a rerun resumes from the cached stages and gives the same tables
    stamp = (out / "sets" / "sparse.safetensors").stat().st_mtime_ns
    again = reproduce(small_config(tiny_models, extra_defenses=("h264", "bitdepth")), out, command="test")
    assert (out / "sets" / "sparse.safetensors").stat().st_mtime_ns == stamp
    assert again["table3"] == res["table3"] and again["table4"] == res["table4"]


def test_reproduce_refuses_another_config_in_the_same_folder(tiny_models, tmp_path):
    from vidshield.errors import VidshieldError

    out = tmp_path / "run"
    (out).mkdir()
    (out / "config.json").write_text(json.dumps({"dataset": "synthetic", "seed": 123}))
    with pytest.raises(VidshieldError, match="another configuration"):
        reproduce(small_config(tiny_models), out)


def test_unknown_models_give_a_clear_error(tmp_path):
    from vidshield.errors import VidshieldError

    with pytest.raises(VidshieldError, match="ucf101"):
        reproduce(ReproduceConfig(dataset="ucf101"), tmp_path)

"""Which ComDefend weights the spatial defense uses: ``comdefend-real`` on real footage (a user's
file, the UT-Interaction models' pipelines), ``comdefend`` for the synthetic reproduction."""

from __future__ import annotations

import json
from types import SimpleNamespace

from vidshield.cli import main
from vidshield.defenses.spatial.comdefend import DEFAULT_WEIGHTS, REAL_FOOTAGE_WEIGHTS, model_comdefend
from vidshield.models.checkpoints import zoo_dir


def test_model_comdefend_reads_the_checkpoint_entry():
    assert model_comdefend(SimpleNamespace(metadata={"comdefend": "mine"})) == "mine"
    assert model_comdefend(SimpleNamespace(metadata={})) == DEFAULT_WEIGHTS == "comdefend"
    assert model_comdefend(SimpleNamespace(metadata={"comdefend": 3}), default="x") == "x"
    assert model_comdefend(object(), default=REAL_FOOTAGE_WEIGHTS) == "comdefend-real"


def test_shipped_models_name_their_comdefend():
    named = {}
    for path in sorted(zoo_dir().glob("*.json")):
        meta = json.loads(path.read_text())
        if "architecture" in meta and meta.get("format", "").startswith("vidshield-model"):
            named[path.stem] = meta.get("comdefend")
    real = {k for k, v in named.items() if v == REAL_FOOTAGE_WEIGHTS}
    assert {"ut-lrcn", "ut-lrcn-v2", "ut-c3d", "ut-c3d-v2", "ut-lrcn-motion", "ut-c3d-motion"} <= real
    assert all(v is None for k, v in named.items() if k.startswith("synthetic-"))
    assert (zoo_dir() / f"{REAL_FOOTAGE_WEIGHTS}.safetensors").is_file()


def test_pipelines_follow_the_model_and_the_reproduction_keeps_comdefend():
    from vidshield.eval.reproduce import ReproduceConfig
    from vidshield.pipeline import build_pipeline

    assert build_pipeline(model="ut-lrcn").spatial.weights == REAL_FOOTAGE_WEIGHTS
    assert build_pipeline(model="synthetic-lrcn").spatial.weights == DEFAULT_WEIGHTS
    assert build_pipeline(model="ut-lrcn", comdefend="comdefend").spatial.weights == "comdefend"
    from vidshield.cli.reproduce import command as reproduce

    assert ReproduceConfig(dataset="ut-interaction").comdefend == DEFAULT_WEIGHTS
    assert next(p.default for p in reproduce.params if p.name == "comdefend") == DEFAULT_WEIGHTS


def test_corpus_fingerprint_names_the_weights_the_pipeline_picks():
    from vidshield.distributed.corpus import _named_comdefend

    assert _named_comdefend("ut-lrcn", "ut-lrcn") == REAL_FOOTAGE_WEIGHTS
    assert _named_comdefend("synthetic-lrcn", "synthetic-lrcn") == DEFAULT_WEIGHTS


def test_defend_spatial_on_a_user_file_uses_the_real_footage_weights(tmp_path, lossless_video_file, capsys):
    from vidshield.io import read_video

    out = {}
    for name, extra in (("real", []), ("synthetic", ["--comdefend", "comdefend"])):
        path = tmp_path / f"{name}.mkv"
        args = ["defend", str(lossless_video_file), "-o", str(path), "--method", "spatial", "--json", *extra]
        assert main(args) == 0
        assert json.loads(capsys.readouterr().out)["settings"]["comdefend"] == (
            "comdefend" if extra else "comdefend-real"
        )
        out[name] = read_video(path)
    assert not (out["real"] == out["synthetic"]).all()

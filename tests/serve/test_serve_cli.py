"""`vidshield serve` refuses what it cannot serve with one line and exit status 2, before it listens."""

from __future__ import annotations

import pytest

from vidshield.cli import main
from vidshield.errors import VidshieldError
from vidshield.serve.scanning import PipelineCache, ScanOptions, ScanSettings, check_settings


def run(capsys, *argv):
    rc = main(["serve", "--data", "unused", *argv])
    err = capsys.readouterr().err.strip()
    return rc, err


def test_a_wrong_model_classifier_or_config_stops_the_command(tiny_models, tmp_path, capsys):
    rc, err = run(capsys, "--model", f"tiny={tmp_path / 'missing'}", "--comdefend", tiny_models["comdefend"])
    assert rc == 2 and len(err.splitlines()) == 1 and "missing" in err
    not_torchscript = tmp_path / "model.pt"
    not_torchscript.write_bytes(b"PK\x03\x04 not an archive")
    argv = ["--model", f"tiny={tiny_models['lrcn']}", "--comdefend", tiny_models["comdefend"]]
    rc, err = run(capsys, *argv, "--classifier", f"mine={not_torchscript}")
    assert rc == 2 and len(err.splitlines()) == 1 and "is not a TorchScript archive" in err
    config = tmp_path / "detector.json"
    config.write_text('{"gamma1": "high"}')
    rc, err = run(capsys, *argv, "--config", f"calib={config}")
    assert rc == 2 and len(err.splitlines()) == 1 and "'gamma1' must be a number" in err
    assert not (tmp_path / "unused").exists()


def test_an_api_key_file_must_be_a_small_regular_file(tmp_path, capsys):
    rc, err = run(capsys, "--api-key-file", "/dev/zero")
    assert (rc, err) == (2, "error: /dev/zero is not a regular file: put the API key in one")
    big = tmp_path / "key.txt"
    big.write_text("k" * 5000)
    rc, err = run(capsys, "--api-key-file", str(big))
    assert rc == 2 and err.endswith("is longer than 4096 bytes: put only the API key in it")


def test_each_job_gets_its_own_pipeline_over_models_loaded_once(tiny_models):
    settings = ScanSettings(models={"tiny": tiny_models["lrcn"]}, comdefend=tiny_models["comdefend"])
    check_settings(settings)
    cache = PipelineCache(settings)
    a = cache.get(ScanOptions(model="tiny", qp=20, polluted="minority", squeeze_check=True, vote=True))
    b = cache.get(ScanOptions(model="tiny"))
    assert a.classifier is b.classifier and a.detector is b.detector and a.spatial is b.spatial
    assert (a.temporal.qp, a.polluted, a.squeeze_check, a.vote) == (20, "minority", True, True)
    # vote None: the detector's default (the tiny checkpoint says nothing: off), as build_pipeline(vote=None)
    assert (b.temporal.qp, b.polluted, b.squeeze_check, b.vote) == (36, "exceptions", False, False)
    with pytest.raises(VidshieldError, match="no-such-model"):
        check_settings(ScanSettings(models={"x": "no-such-model"}, comdefend=tiny_models["comdefend"]))

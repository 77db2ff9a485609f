"""Every option that reads a file the user names gets hostile contents (empty, random bytes, cut
short, bits flipped, JSON of the wrong shape) and answers with one line and exit status 2, or
with a clean run where the damage is to a video that the command reports: never a traceback.

Options: ``attack --generator``, ``reproduce --dense-perturbation``, ``train --resume`` (its
``-last`` state: refused, never overwritten by a fresh start), ``calibrate --clean`` (a folder of damaged videos) and ``train-detector
--input-spec``. The files are made here."""

from __future__ import annotations

import random

import pytest
import torch

from vidshield.attacks import CDUPGenerator, save_universal
from vidshield.cli import main
from vidshield.io import write_video
from vidshield.models import create_model, save_model


def _mutations(data: bytes, *, seed: int = 0) -> dict[str, bytes]:
    """Hostile versions of a file's bytes."""
    rng = random.Random(seed)
    flipped = bytearray(data)
    for _ in range(max(1, len(data) // 50)):
        i = rng.randrange(len(flipped))
        flipped[i] ^= 1 << rng.randrange(8)
    return {
        "empty": b"",
        "random": bytes(rng.randrange(256) for _ in range(max(64, len(data) // 4))),
        "half": data[: len(data) // 2],
        "bitflip": bytes(flipped),
    }


_HOSTILE_JSON = {
    "list": b"[]",
    "cut": b'{"a": ',
    "deep": b"[" * 5000 + b"]" * 5000,
    "nan": b'{"frames": NaN, "height": 1e999, "width": -3, "layout": 7}',
    "huge": b'{"frames": 100000000000, "height": 99999999, "width": 99999999}',
}


def _run(args, capsys) -> int:
    rc = main(args)
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    if rc != 0:
        lines = [line for line in err.splitlines() if line.strip()]
        assert rc == 2 and lines and lines[-1].startswith(("error: ", "Error: ")), (args, err)
    return rc


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("m") / "tiny"
    save_model(create_model("test-lrcn", num_classes=10, input_size=(8, 32, 32)), path)
    return path


def test_attack_generator_and_reproduce_dense_perturbation_with_hostile_files(tmp_path, tiny_model, capsys):
    gen = CDUPGenerator(frames=8, height=32, width=32, z_dim=4, channels=(8, 8, 8, 8))
    good = save_universal(tmp_path / "good", gen.perturbation(seed=0), generator_net=gen)
    files = {"safetensors": good.read_bytes(), "json": good.with_suffix(".json").read_bytes()}
    cases = [(suffix, name, bad) for suffix, data in files.items() for name, bad in _mutations(data).items()]
    cases += [("json", name, bad) for name, bad in _HOSTILE_JSON.items()]
    for suffix, name, bad in cases:
        base = tmp_path / f"{suffix}-{name}"
        for s, data in files.items():
            base.with_suffix(f".{s}").write_bytes(bad if s == suffix else data)
        args = ["attack", "--attack", "dense", "--model", str(tiny_model), "--generator", str(base)]
        assert _run([*args, "--num-videos", "2", "--out", str(tmp_path / "o")], capsys) == 2, (suffix, name)
        args = ["reproduce", "--dataset", "synthetic", "--num-test", "2", "--dense-perturbation", str(base)]
        assert _run([*args, "--out", str(tmp_path / "r")], capsys) == 2, (suffix, name)


def test_train_resume_with_a_hostile_last_state(tmp_path, capsys):
    args = ["train", "--model", "test-lrcn", "--num-videos", "8", "--test-videos", "0", "--epochs", "2"]
    args += ["--batch-size", "8", "--device", "cpu", "--resume", "--out"]
    assert _run([*args, str(tmp_path / "ok" / "m")], capsys) == 0
    files = {s: (tmp_path / "ok" / f"m-last.{s}").read_bytes() for s in ("safetensors", "json")}
    cases = [(suffix, name, bad) for suffix, data in files.items() for name, bad in _mutations(data).items()]
    cases += [("json", name, bad) for name, bad in _HOSTILE_JSON.items()]
    for suffix, name, bad in cases:
        folder = tmp_path / f"{suffix}-{name}"
        folder.mkdir()
        for s, data in files.items():
            (folder / f"m-last.{s}").write_bytes(bad if s == suffix else data)
        assert _run([*args, str(folder / "m")], capsys) == 2, (suffix, name)  # refused, never started afresh
        assert (folder / f"m-last.{suffix}").read_bytes() == bad  # the state is left as it was


def test_calibrate_on_a_folder_of_damaged_videos(tmp_path, tiny_model, capsys):
    from tests.conftest import make_moving_video

    clean = tmp_path / "clean"
    clean.mkdir()
    good = write_video(clean / "good.mkv", make_moving_video(24, 32, 32, seed=1), fps=25.0)
    for name, bad in _mutations(good.read_bytes()).items():
        (clean / f"{name}.mkv").write_bytes(bad)
    (clean / "notes.mp4").write_text("not a video")
    args = ["calibrate", "--clean", str(clean), "--target-fpr", "0.2", "--model", str(tiny_model)]
    _run([*args, "--device", "cpu", "--out", str(tmp_path / "calib")], capsys)


def test_train_detector_with_a_hostile_input_spec(tmp_path, capsys):
    torch.manual_seed(0)
    model = create_model("test-c3d", num_classes=3).eval()
    traced = torch.jit.trace(model, torch.rand(1, 16, 3, 32, 32))
    pt = tmp_path / "m.pt"
    torch.jit.save(traced, str(pt))
    for name, bad in _HOSTILE_JSON.items():
        spec = tmp_path / f"{name}.json"
        spec.write_bytes(bad)
        args = ["train-detector", "--classifier", str(pt), "--input-spec", str(spec), "--num-videos", "4"]
        assert _run([*args, "--epochs", "1", "--out", str(tmp_path / "d"), "--device", "cpu"], capsys) == 2, name

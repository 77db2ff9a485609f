"""No traceback on any input: each cause found by the fuzzing in issue 12 ends in one line and
exit status 2 (or, for names, in plain text), checked before the work where it can be."""

from __future__ import annotations

import json
import os
import warnings

import av
import numpy as np
import pytest
import torch

from vidshield.attacks import CDUPGenerator, load_universal, save_universal
from vidshield.attacks.dataset import read_set_manifest
from vidshield.cli import main
from vidshield.detection.detector import collect_videos
from vidshield.errors import CheckpointError, InputFormatError, VideoDecodeError
from vidshield.io import CorruptVideoWarning, iter_chunks, write_video
from vidshield.jsonio import MAX_DEPTH, contained_path, field, read_json
from vidshield.models import create_model, load_model, save_model
from vidshield.text import printable


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


def _clip(path, frames=8, size=32, rate=25, fmt=None):
    with av.open(str(path), "w", format=fmt) as out:
        stream = out.add_stream("mpeg2video" if fmt == "mpegts" else "ffv1", rate=rate)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(np.full((size, size, 3), 20 * i, np.uint8), format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


# -- JSON --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, reason",
    [
        ("[1, 2]", "must hold an object"),
        ("[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5), "nested too deeply"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('{"n": ' + "9" * 400 + "}", "400 digits"),
        ('{"n": 1', "not valid JSON"),
        (b'{"n": "\xff"}', "not UTF-8"),
    ],
)
def test_read_json_refuses_malformed_files(tmp_path, text, reason):
    path = tmp_path / "x.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(InputFormatError, match=reason):
        read_json(path)


def test_read_json_reads_only_bounded_regular_files(tmp_path):
    with pytest.raises(InputFormatError, match="not a regular file"):
        read_json("/dev/zero")
    with pytest.raises(InputFormatError, match="folder"):
        read_json(tmp_path)
    big = tmp_path / "big.json"
    big.write_text("[" + "0," * 600 + "0]")
    with pytest.raises(InputFormatError, match="too large"):
        read_json(big, expect=list, max_bytes=1000)
    assert len(read_json(big, expect=list)) == 601


def test_field_checks_types_and_ranges():
    d = {"n": 3, "b": True, "x": "3", "f": 2, "names": ["a", 1]}
    assert field(d, "n", int, what="w") == 3 and field(d, "f", float, what="w") == 2.0
    with pytest.raises(InputFormatError, match="'b' must be an integer"):
        field(d, "b", int, what="w")
    with pytest.raises(InputFormatError, match="'x' must be an integer"):
        field(d, "x", int, what="w")
    with pytest.raises(InputFormatError, match=r"must lie in \[5, 9\]"):
        field(d, "n", int, lo=5, hi=9, what="w")
    with pytest.raises(InputFormatError, match="every entry of 'names' must be a string"):
        field(d, "names", list, items=str, what="w")
    assert field(d, "missing", int, default=7, what="w") == 7


def _checkpoint_with(tmp_path, **changes):
    path = save_model(create_model("test-lrcn", num_classes=3), tmp_path / "m")
    meta_path = path.with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    meta.update(changes)
    meta_path.write_text(json.dumps(meta))
    return path


@pytest.mark.parametrize(
    "changes, reason",
    [
        ({"num_classes": "3"}, "'num_classes' must be an integer"),
        ({"class_names": ["a", 2, "c"]}, "every entry of 'class_names' must be a string"),
        ({"arch_config": [1, 2]}, "'arch_config' must be an object"),
        ({"arch_config": {"hidden": 10**6}}, "do not fit"),  # terabytes: refused before it is built
        ({"arch_config": {"hidden": 10**15}}, "cannot rebuild"),
        ({"num_classes": 10**12}, r"must lie in \[1, 100000\]"),
        ({"input_spec": {"frames": "x"}}, "'frames' must be an integer"),
    ],
)
def test_checkpoint_metadata_is_validated_before_the_model_is_built(tmp_path, changes, reason):
    path = _checkpoint_with(tmp_path, **changes)
    with pytest.raises(CheckpointError, match=reason):
        load_model(path)


def test_malformed_checkpoint_and_config_give_one_line_in_the_cli(tmp_path, capsys, lossless_video_file):
    path = save_model(create_model("test-lrcn", num_classes=3), tmp_path / "m")
    path.with_suffix(".json").write_text("[" * 5000 + "]" * 5000)
    assert main(["scan", str(lossless_video_file), "--model", str(path)]) == 2
    assert "nested too deeply" in _one_error_line(capsys)
    good = save_model(create_model("test-lrcn", num_classes=3), tmp_path / "good")
    assert main(["scan", str(lossless_video_file), "--model", str(good), "--config", "/dev/zero"]) == 2
    assert "not a regular file" in _one_error_line(capsys)
    for bad in ('{"gamma1": "0.1"}', '{"gamma1": 0.5, "gamma2": 0.1}', "[]", '{"score": 5}'):
        config = tmp_path / "detector.json"
        config.write_text(bad)
        assert main(["scan", str(lossless_video_file), "--model", str(good), "--config", str(config)]) == 2
        assert "detector config" in _one_error_line(capsys)


def test_training_state_with_wrong_field_types_is_refused(tmp_path):
    from vidshield.models.training import train_classifier

    clips = [(torch.rand(16, 3, 32, 32), i % 2) for i in range(4)]
    model = create_model("test-lrcn", num_classes=2)
    train_classifier(model, clips, None, epochs=2, batch_size=2, out=tmp_path / "m", progress=False)
    last = tmp_path / "m-last.json"
    meta = json.loads(last.read_text())
    for key, value in (("epoch", "1"), ("history", {"a": 1}), ("scheduler", [1]), ("epoch", 99)):
        last.write_text(json.dumps({**meta, key: value}))
        with pytest.raises(CheckpointError, match=f"'{key}'"):
            train_classifier(
                model, clips, None, epochs=2, batch_size=2, out=tmp_path / "m", resume=True, progress=False
            )


def test_generator_metadata_cannot_ask_for_a_huge_generator(tmp_path):
    gen = CDUPGenerator(frames=4, height=16, width=16, z_dim=4, channels=(8, 8, 8, 8))
    path = save_universal(tmp_path / "u", gen.perturbation(seed=0), generator_net=gen)
    meta_path = path.with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    assert load_universal(path)[1] is not None
    for generator in ({**meta["generator"], "z_dim": 10**6}, {**meta["generator"], "frames": "4"}, [1]):
        meta_path.write_text(json.dumps({**meta, "generator": generator}))
        with pytest.raises(CheckpointError):
            load_universal(path)


# -- manifests ---------------------------------------------------------------------------------


@pytest.mark.parametrize("entry", ["../outside.mkv", "/etc/passwd", "sub/../../x.mkv", ""])
def test_manifest_paths_stay_inside_the_set_folder(tmp_path, entry):
    folder = tmp_path / "set"
    folder.mkdir()
    (tmp_path / "outside.mkv").write_bytes(b"x")
    (folder / "manifest.json").write_text(json.dumps([{"file": entry}]))
    with pytest.raises(InputFormatError, match="outside the set folder|non-empty relative path"):
        collect_videos(folder)
    clip = {"index": 0, "file": entry, "label": 0, "pred_before": 0, "pred_after": 0, "success": True}
    clip.update(perturbed_frames=1, l21=0.1, linf=0.1, mean_abs_255=0.1)
    (folder / "manifest.json").write_text(json.dumps({"format": "vidshield-adversarial-set/1", "clips": [clip]}))
    with pytest.raises(InputFormatError, match="outside the set folder|non-empty relative path"):
        read_set_manifest(folder)


def test_manifest_symlink_out_of_the_folder_is_refused(tmp_path):
    folder = tmp_path / "set"
    folder.mkdir()
    (folder / "link.mkv").symlink_to(tmp_path / "elsewhere.mkv")
    with pytest.raises(InputFormatError, match="outside"):
        contained_path(folder, "link.mkv", what="m")
    assert contained_path(folder, "a/b.mkv", what="m") == folder / "a" / "b.mkv"


def test_manifest_entries_of_the_wrong_type_are_refused(tmp_path):
    clip = {"index": "0", "file": "c.mkv", "label": 0, "pred_before": 0, "pred_after": 0, "success": True}
    (tmp_path / "manifest.json").write_text(json.dumps({"format": "vidshield-adversarial-set/1", "clips": [clip]}))
    with pytest.raises(InputFormatError, match="'index' must be an integer"):
        read_set_manifest(tmp_path)


# -- videos and outputs ------------------------------------------------------------------------


def test_resolution_change_midway_is_scaled_to_the_first_frames_size(tmp_path):
    a, b = _clip(tmp_path / "a.ts", size=32, fmt="mpegts"), _clip(tmp_path / "b.ts", size=48, fmt="mpegts")
    joined = tmp_path / "joined.ts"
    joined.write_bytes(a.read_bytes() + b.read_bytes())
    chunks = [c for _, c in iter_chunks(joined, chunk_frames=4)]
    assert sum(c.shape[0] for c in chunks) >= 12
    assert {tuple(c.shape[1:]) for c in chunks} == {(3, 32, 32)}


def test_elongated_frames_are_a_decode_error(tmp_path):
    path = write_video(tmp_path / "sliver.mkv", torch.rand(3, 3, 2, 4000))
    with pytest.raises(VideoDecodeError, match="too elongated"):
        list(iter_chunks(path, short_side=64))


def test_pyav_index_errors_become_decode_errors(tmp_path, lossless_video_file, monkeypatch):
    from vidshield.io import _source

    def broken_demux(self, *streams):
        raise IndexError("list index out of range")
        yield

    monkeypatch.setattr(av.container.InputContainer, "demux", broken_demux, raising=False)
    with pytest.raises(VideoDecodeError, match="damaged"), _source.VideoSource(lossless_video_file) as src:
        list(src.frames())


def _mjpeg_avi(path, frames: int, *, step: int = 4):
    """An MJPEG AVI of ``frames`` 32x32 grey frames (frame i at level ``step * i``); its header
    declares the frame count and it ends with an idx1 index."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mjpeg", rate=25)
        stream.width = stream.height = 32
        stream.pix_fmt = "yuvj420p"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), step * i, np.uint8), format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def _truncated_avi(path, frames=60):
    """An MJPEG AVI whose header declares ``frames`` frames and whose data holds about a third
    of them (like OpenCV's sample tree.avi: 68 of 444 frames present, which players show)."""
    data = _mjpeg_avi(path, frames).read_bytes()
    path.write_bytes(data[: len(data) // 3])
    return path


def test_a_truncated_avi_is_read_as_far_as_it_decodes_and_refused_when_strict(tmp_path):
    path = _truncated_avi(tmp_path / "clip.avi")
    with pytest.warns(CorruptVideoWarning, match="truncated") as record:
        chunks = list(iter_chunks(path))
    decoded = sum(c.shape[0] for _, c in chunks)
    warning = next(w.message for w in record if w.message.truncated)
    assert 3 < decoded < 60 and warning.frames_declared == 60
    with pytest.raises(VideoDecodeError, match=r"truncated: .*--strict"):
        list(iter_chunks(path, strict=True))


def test_scan_gives_a_verdict_on_a_truncated_file_and_strict_refuses_it(tmp_path, capsys):
    path = _truncated_avi(tmp_path / "clip.avi")
    report = tmp_path / "r.json"
    args = ["scan", str(path), "--model", "synthetic-lrcn", "--report", str(report), "--plot", str(tmp_path / "p.png")]
    assert main([*args, "--json"]) == 0
    err = capsys.readouterr().err
    assert "warning: the file is truncated; scanned the" in err and "of the 60 its container declares" in err
    saved = json.loads(report.read_text())
    assert saved["truncated"] is True and saved["frames_declared"] == 60 and 3 < saved["frames_decoded"] < 60
    assert saved["verdict"] in ("clean", "sparse", "dense")
    assert main([*args, "--strict"]) == 2
    line = _one_error_line(capsys)
    assert "truncated" in line and "--strict" in line


def test_defend_checks_the_output_before_the_work(tmp_path, capsys, monkeypatch):
    import vidshield.defenses.temporal as temporal

    def no_work(*a, **k):
        raise AssertionError("the defense ran before the output was checked")

    monkeypatch.setattr(temporal, "defend_stream", no_work)
    fast = _clip(tmp_path / "fast.nut", rate=2000)
    assert main(["defend", str(fast), "-o", str(tmp_path / "o.mkv"), "--method", "temporal", "--every", "2"]) == 2
    assert "fps must lie in (0, 1000]" in _one_error_line(capsys)
    clip = _clip(tmp_path / "clip.mkv")
    assert main(["defend", str(clip), "-o", str(tmp_path / "x.webm"), "--method", "temporal", "--every", "2"]) == 2
    assert "unsupported suffix '.webm'" in _one_error_line(capsys)
    (tmp_path / "file").write_text("")
    assert (
        main(["defend", str(clip), "-o", str(tmp_path / "file" / "o.mkv"), "--method", "temporal", "--every", "2"]) == 2
    )
    assert "is not a folder" in _one_error_line(capsys)
    assert (
        main(["defend", str(clip), "-o", str(tmp_path / ("n" * 300 + ".mkv")), "--method", "temporal", "--every", "2"])
        == 2
    )
    assert "longer than" in _one_error_line(capsys)


def test_scan_names_are_plain_text(tmp_path, capsys, monkeypatch):
    names = ["\x1b[31mred\x1b[0m", "$\\alpha$", "new\nline"]
    model = create_model("test-lrcn", num_classes=3)
    model.class_names = names
    path = save_model(model, tmp_path / "m")
    clip = _clip(tmp_path / "clip \x1b[2J $x$.mkv", frames=6)
    monkeypatch.chdir(tmp_path)
    assert main(["scan", str(clip), "--model", str(path), "--comdefend", "comdefend", "--qp", "36"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\\x1b[2J" in out
    assert out.count("\n") == len(out.splitlines())  # every name on its own line, no raw new lines
    report = json.loads((tmp_path / (clip.name + ".scan.json")).read_text())
    assert report["frames_decoded"] == 6 and report["frames_declared"] == 6 and report["warnings"] == []
    assert (tmp_path / (clip.name + ".scan.png")).stat().st_size > 1000


def test_scan_report_in_a_folder_that_cannot_exist(tmp_path, capsys, lossless_video_file):
    (tmp_path / "file").write_text("")
    model = save_model(create_model("test-lrcn", num_classes=3), tmp_path / "m")
    rc = main(["scan", str(lossless_video_file), "--model", str(model), "--report", str(tmp_path / "file" / "r.json")])
    assert rc == 2 and "is not a folder" in _one_error_line(capsys)


def test_printable_escapes_control_characters_and_bad_bytes():
    assert printable("a\x1b[31mb\nc") == "a\\x1b[31mb\\x0ac"
    assert printable(os.fsdecode(b"caf\xe9.mkv")) == "caf\ufffd.mkv"
    assert printable("$\\alpha$ ok") == "$\\alpha$ ok"


# -- issue 14's inputs: input specs, budgets in detector configs, distilled detectors' records ---


@pytest.mark.parametrize(
    "text, reason",
    [
        ('{"frames": "16", "height": 8, "width": 8}', "'frames' must be an integer"),
        ('{"frames": ' + "9" * 400 + ', "height": 8, "width": 8}', "400 digits"),
        ('{"frames": 16, "height": 0, "width": 8}', r"'height' must lie in \[1, 65536\]"),
        ('{"frames": 16, "height": 8, "width": 8, "layout": "NHWC"}', "'layout' must be one of"),
        ('{"frames": 16, "height": 8, "width": 8, "mean": [0.5]}', "'mean' must hold 3 numbers"),
        ('{"frames": 16, "height": 8, "width": 8, "class_names": [1, 2]}', "every entry of 'class_names'"),
        ('{"frames": 16, "height": 8, "width": 8, "output": "scores"}', "'output' must be one of logits"),
        ("[16, 8, 8]", "must hold an object"),
    ],
)
def test_input_spec_of_the_wrong_shape_is_refused(tmp_path, text, reason):
    from vidshield.models.adapter import ClassifierError, load_input_spec

    path = tmp_path / "spec.json"
    path.write_text(text)
    for source in (path, text):  # a file and the same JSON inline
        with pytest.raises(ClassifierError, match=reason):
            load_input_spec(source)
    with pytest.raises(ClassifierError, match="not a regular file"):
        load_input_spec("/dev/zero")


@pytest.mark.parametrize(
    "value, reason",
    [('"0.01"', "'target_fpr' must be a number"), ("1.5", r"must lie in \[0.0, 1.0\]"), ("0", "invalid")],
)
def test_detector_config_with_a_bad_budget_is_refused(tmp_path, value, reason):
    from vidshield.detection import DetectorConfig

    path = tmp_path / "detector.json"
    path.write_text('{"gamma1": 0.1, "gamma2": 0.3, "target_fpr": ' + value + "}")
    with pytest.raises(InputFormatError, match=reason):
        DetectorConfig.load(path)


@pytest.mark.parametrize(
    "serves, reason",
    [(["a"], "'serves' must be an object"), ({"ref": 5, "sha256": "ab"}, "'ref' must be"), ({"ref": "c"}, "'sha256'")],
)
def test_distilled_detector_record_of_the_wrong_shape_is_refused(serves, reason):
    from vidshield.detection.train_detector import served_classifier

    det = create_model("test-lrcn", num_classes=3)
    det.metadata = {"serves": serves}
    with pytest.raises(CheckpointError, match=reason):
        served_classifier(det)


@pytest.mark.parametrize(
    "window_scores, reason",
    [
        (None, "predates them"),
        ({"alpha": "0.1"}, "'alpha' must be a list"),
        ({"alpha": [0.1, "x"]}, "every entry of 'alpha'"),
        ({"alpha": []}, "has no window scores"),
        ([0.1], "'window_scores' must be an object"),
    ],
)
def test_calibrate_reuse_with_bad_window_scores_gives_one_line(tmp_path, capsys, window_scores, reason):
    record = {"group": "clean", "file": "a.mkv", "alpha": 0.0, "scores": {"alpha": 0.0}, "frame_labels": [0, 0]}
    if window_scores is not None:
        record["window_scores"] = window_scores
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"model": "m", "videos": [record]}))
    argv = ["calibrate", "--reuse", str(results), "--target-fpr", "0.1", "--out", str(tmp_path / "out")]
    assert main(argv) == 2
    assert reason in _one_error_line(capsys)


def test_a_resumed_attack_set_removes_temp_files_of_a_killed_write(tmp_path):
    from vidshield.utils import remove_stale_temp_files

    (tmp_path / ".clip_00001.mkv.abc123.tmp").write_bytes(b"half a video")
    (tmp_path / ".manifest.json.x.tmp").write_bytes(b"{")
    (tmp_path / "clip_00000.mkv").write_bytes(b"kept")
    assert remove_stale_temp_files(tmp_path) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip_00000.mkv"]


def test_defend_keeps_what_a_truncated_file_holds_and_strict_refuses_it(tmp_path, capsys):
    path = _truncated_avi(tmp_path / "clip.avi")
    out = tmp_path / "o.mkv"
    args = ["defend", str(path), "-o", str(out), "--method", "temporal", "--every", "4"]
    assert main([*args, "--strict"]) == 2
    line = _one_error_line(capsys)
    assert "truncated" in line and "--strict" in line and not out.exists()
    assert main(args) == 0
    assert "warning: the file is truncated; defending the" in capsys.readouterr().err
    from vidshield.io import probe

    assert probe(out).num_frames == probe(path).num_frames


def test_an_avi_without_its_index_reads_whole_and_a_truncated_one_without_it_says_truncated(tmp_path):
    """A missing idx1 chunk (renamed to JUNK) costs nothing: every frame decodes, no warning;
    cut short as well, the frames that decode are read with a truncation warning."""
    from vidshield.io import probe, read_frames

    data = bytearray(_mjpeg_avi(tmp_path / "clip.avi", 20, step=8).read_bytes())
    at = data.rfind(b"idx1")
    assert at > 0
    data[at : at + 4] = b"JUNK"
    no_index = tmp_path / "no-index.avi"
    no_index.write_bytes(bytes(data))
    with warnings.catch_warnings():
        warnings.simplefilter("error", CorruptVideoWarning)
        assert read_frames(no_index).shape == (20, 32, 32, 3)
    assert not probe(no_index).truncated
    cut = tmp_path / "cut.avi"
    cut.write_bytes(bytes(data[: len(data) // 2]))
    with pytest.warns(CorruptVideoWarning, match="truncated"):
        frames = read_frames(cut)
    assert 0 < len(frames) < 20 and probe(cut).truncated

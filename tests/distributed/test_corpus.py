"""Corpus scan building blocks in one process: sources, hashes, rows, the resumable store."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os

import pytest
import torch
from tests.distributed.conftest import SETTINGS, without_timing

from vidshield.distributed.corpus import (
    COLUMNS,
    ResultStore,
    ScanSettings,
    content_hash,
    decode_video,
    list_videos,
    pipeline_for,
    read_rows,
    scan_corpus,
    scan_decoded,
    scan_one,
    settings_hash,
)
from vidshield.errors import InputFormatError, OutputError, VidshieldError
from vidshield.pipeline import scan_file, working_spec


def test_list_videos_folder_list_and_single_file(corpus, tmp_path):
    names = [p.relative_to(corpus).as_posix() for p in list_videos(corpus)]
    assert names == ["a/clean0.mkv", "a/nested/clean3.mkv", "garbage.mp4", "short.mkv", "spliced.mkv"]

    listing = tmp_path / "videos.txt"
    listing.write_text(
        f"# a comment\n{corpus / 'spliced.mkv'}\n\n{corpus / 'spliced.mkv'}\nmissing.mkv\n", encoding="utf-8"
    )
    assert list_videos(listing) == [corpus / "spliced.mkv", tmp_path / "missing.mkv"]
    assert list_videos(corpus / "short.mkv") == [corpus / "short.mkv"]
    with pytest.raises(VidshieldError, match="no such folder"):
        list_videos(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(VidshieldError, match="no videos"):
        list_videos(tmp_path / "empty")


def test_content_hash_is_sha256_of_the_bytes(corpus):
    path = corpus / "spliced.mkv"
    data = path.read_bytes()
    assert content_hash(path, chunk=1000) == (len(data), hashlib.sha256(data).hexdigest())


def test_settings_hash_follows_results_not_the_device():
    assert settings_hash(SETTINGS) == settings_hash(dataclasses.replace(SETTINGS, device="cuda"))
    assert settings_hash(SETTINGS) != settings_hash(dataclasses.replace(SETTINGS, qp=30))
    assert settings_hash(SETTINGS) != settings_hash(dataclasses.replace(SETTINGS, polluted="minority"))
    assert settings_hash(SETTINGS) == settings_hash(dataclasses.replace(SETTINGS, allow_mismatch=True))
    assert settings_hash(SETTINGS) != settings_hash(dataclasses.replace(SETTINGS, vote=False))


def test_settings_hash_follows_the_served_classifier_and_the_json(tmp_path):
    """A distilled detector protects the classifier its JSON names: that classifier's files are
    part of the settings, as are the detector's JSON and not only its weights."""
    import shutil

    from vidshield.models.checkpoints import zoo_dir

    for name in ("synthetic-lrcn", "synthetic-c3d"):
        for ext in (".safetensors", ".json"):
            shutil.copy(zoo_dir() / f"{name}{ext}", tmp_path / f"{name}{ext}")
    detector = tmp_path / "synthetic-lrcn"
    plain = settings_hash(ScanSettings(model=str(detector)))
    meta = json.loads(detector.with_suffix(".json").read_text())
    meta["serves"] = {"ref": str(tmp_path / "synthetic-c3d"), "sha256": "0" * 64}
    detector.with_suffix(".json").write_text(json.dumps(meta))
    settings_hash.cache_clear()  # (scan_corpus clears it at its start)
    served = settings_hash(ScanSettings(model=str(detector)))
    assert served != plain
    assert served == settings_hash(ScanSettings(model=str(detector), classifier=str(tmp_path / "synthetic-c3d")))
    with (tmp_path / "synthetic-c3d.json").open("a") as f:
        f.write(" ")
    settings_hash.cache_clear()
    assert settings_hash(ScanSettings(model=str(detector))) != served


def test_scan_one_row_is_scan_file(corpus):
    path = corpus / "spliced.mkv"
    row = scan_one(path, SETTINGS)
    result = scan_file(pipeline_for(SETTINGS), path)
    names = pipeline_for(SETTINGS).classifier.class_names
    assert list(row) == list(COLUMNS)
    assert row["error"] is None
    assert row["verdict"] == result.verdict == "sparse"
    assert row["defense"] == "temporal"
    assert row["exception_frames"] == result.exception_frames() == [3, 7, 11, 19]
    assert row["alpha"] == max(r.alpha for _, r in result.windows)
    assert (row["label_before"], row["label_after"]) == (result.label_before, result.label)
    assert row["class_after"] == names[result.label]
    assert (row["num_frames"], row["windows"]) == (24, 2)
    assert (row["frames_declared"], row["warnings"]) == (result.frames_declared, result.warnings) == (24, [])
    assert (row["size"], row["content_hash"]) == content_hash(path)
    assert row["settings_hash"] == settings_hash(SETTINGS)
    assert scan_one(path, SETTINGS, known_hash=row["content_hash"]) is None  # unchanged: skipped


def test_bad_videos_become_error_rows(corpus, tmp_path):
    short = scan_one(corpus / "short.mkv", SETTINGS)
    assert short["error"] == (
        f"VideoDecodeError: cannot read video {str(corpus / 'short.mkv')!r}: "
        "only 2 decodable frame(s); detection needs at least 3"
    )
    assert short["verdict"] is None and short["content_hash"] is not None
    garbage = scan_one(corpus / "garbage.mp4", SETTINGS)
    assert garbage["error"].startswith("VideoDecodeError: cannot read video")
    missing = scan_one(tmp_path / "missing.mkv", SETTINGS)
    assert missing["error"].startswith("FileNotFoundError") and missing["size"] is None


def test_a_name_that_is_not_utf8_is_stored_escaped_and_resumed(corpus, tmp_path):
    """Parquet strings must be UTF-8: the undecodable byte is stored as an escape, and the rerun
    finds the row under that same text."""
    folder = tmp_path / "names"
    folder.mkdir()
    os.link(corpus / "a" / "clean0.mkv", folder / os.fsdecode(b"bad\xff.mkv"))
    out = tmp_path / "scan.parquet"
    assert scan_corpus(folder, out, SETTINGS)["scanned"] == 1
    (row,) = read_rows(out)
    assert row["path"] == f"{folder.resolve()}/bad\\udcff.mkv" and row["error"] is None
    assert row["label_after"] == scan_one(corpus / "a" / "clean0.mkv", SETTINGS)["label_after"]
    again = scan_corpus(folder, out, SETTINGS)
    assert (again["scanned"], again["skipped"]) == (0, 1)


@pytest.mark.parametrize("name", ["spliced.mkv", "a/clean0.mkv", "short.mkv", "garbage.mp4"])
def test_decode_then_scan_gives_the_scan_one_row(corpus, name):
    """The Ray engine's split (decode task + pipeline actor) computes the same row."""
    path = corpus / name
    spec = working_spec(pipeline_for(SETTINGS))
    head, windows = decode_video(str(path), SETTINGS, spec)
    assert without_timing([scan_decoded(head, windows, SETTINGS)]) == without_timing([scan_one(path, SETTINGS)])
    head, windows = decode_video(str(path), SETTINGS, spec, known_hash=content_hash(path)[1])
    assert head.skipped and windows is None and scan_decoded(head, windows, SETTINGS) is None


def test_two_pass_scan_of_decoded_windows_gives_the_scan_one_row(corpus, tmp_path):
    """With a false-alarm budget the scan's second pass defends the windows that fired: over the
    decoded windows as over the file."""
    from vidshield.detection import DetectorConfig

    config = DetectorConfig(gamma1=0.05, target_fpr=0.01).save(tmp_path / "detector.json")
    settings = dataclasses.replace(SETTINGS, config=str(config))
    path = corpus / "spliced.mkv"
    row = scan_one(path, settings)
    assert row["error"] is None and row["verdict"] == "sparse" and row["defense"] == "temporal"  # both windows fired
    head, windows = decode_video(str(path), settings, working_spec(pipeline_for(settings)))
    assert without_timing([scan_decoded(head, windows, settings)]) == without_timing([row])


def test_a_video_out_of_domain_is_scanned_with_nothing_defended(corpus, monkeypatch):
    """As `scan`: out of the detector config's domain, the verdict is not acted on."""
    import vidshield.pipeline

    path = corpus / "spliced.mkv"
    assert scan_one(path, SETTINGS)["in_domain"] is None  # synthetic-lrcn's paper thresholds: no profile
    monkeypatch.setattr(vidshield.pipeline, "domain_check", lambda pipeline, p: {"in_domain": False})
    row = scan_one(path, SETTINGS)
    assert (row["in_domain"], row["verdict"], row["defense"], row["error"]) == (False, "out_of_domain", "none", None)
    assert row["detector_verdict"] == "sparse"  # what the detector alone said is kept beside it
    head, windows = decode_video(str(path), SETTINGS, working_spec(pipeline_for(SETTINGS)))
    assert without_timing([scan_decoded(head, windows, SETTINGS)]) == without_timing([row])
    assert pipeline_for(SETTINGS).strategy == "routed"  # the shared pipeline is left as it was


def test_the_default_detector_checks_the_domain(tmp_path):
    """The default ut-lrcn ships a config with a profile: noise is out of its domain."""
    from vidshield.io import write_video

    write_video(tmp_path / "noise.mkv", torch.rand(24, 3, 64, 64, generator=torch.Generator().manual_seed(0)), fps=25.0)
    row = scan_one(tmp_path / "noise.mkv", ScanSettings())
    assert row["error"] is None and row["in_domain"] is False and row["defense"] == "none"
    assert row["verdict"] == "out_of_domain"


def _row(path: str, settings: str = "s1", **fields) -> dict:
    row = dict.fromkeys(COLUMNS)
    row.update({"path": path, "settings_hash": settings, "exception_frames": [], **fields})
    return row


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_store_round_trip_resume_and_latest_row(tmp_path, suffix):
    out = tmp_path / f"scan{suffix}"
    first = _row("/v/a.mkv", content_hash="h1", alpha=0.1 + 0.2, exception_frames=[3, 7], seconds=1 / 3, size=5)
    with ResultStore(out) as store:
        store.append(first)
        store.append(_row("/v/b.mkv", content_hash="h2", error="ValueError: too short"))
    assert read_rows(out) == [first, _row("/v/b.mkv", content_hash="h2", error="ValueError: too short")]
    assert not ResultStore.journal_path(out).is_file() or suffix == ".jsonl"

    store = ResultStore(out)
    assert store.previous("/v/a.mkv", "s1") == first
    assert store.previous("/v/a.mkv", "s2") is None
    changed = _row("/v/a.mkv", content_hash="h3")
    store.append(changed)
    store.append(_row("/v/a.mkv", "s2", content_hash="h1"))
    store.close()
    rows = read_rows(out)
    assert [(r["path"], r["settings_hash"], r["content_hash"]) for r in rows] == [
        ("/v/a.mkv", "s1", "h3"),
        ("/v/a.mkv", "s2", "h1"),
        ("/v/b.mkv", "s1", "h2"),
    ]


def test_jsonl_store_survives_a_row_cut_short(tmp_path):
    out = tmp_path / "scan.jsonl"
    with ResultStore(out) as store:
        store.append(_row("/v/a.mkv", content_hash="h1"))
    with out.open("ab") as f:
        f.write(json.dumps(_row("/v/b.mkv", content_hash="h2")).encode()[:40])  # a crash mid-write
    assert [r["path"] for r in read_rows(out)] == ["/v/a.mkv"]
    with ResultStore(out) as store:
        store.append(_row("/v/c.mkv", content_hash="h3"))
    assert [r["path"] for r in read_rows(out)] == ["/v/a.mkv", "/v/c.mkv"]
    assert out.read_bytes().count(b"\n") == 2


def test_parquet_journal_of_an_interrupted_run_is_read(tmp_path):
    out = tmp_path / "scan.parquet"
    store = ResultStore(out)
    store.append(_row("/v/a.mkv", content_hash="h1"))
    store._file.close()  # the process dies before close(): no Parquet file yet, the journal holds the row
    assert not out.exists()
    assert ResultStore(out).previous("/v/a.mkv", "s1")["content_hash"] == "h1"
    ResultStore(out).close()
    assert [r["path"] for r in read_rows(out)] == ["/v/a.mkv"] and not ResultStore.journal_path(out).exists()


def test_store_rejects_other_suffixes_and_unwritable_places(tmp_path):
    with pytest.raises(VidshieldError, match=r"\.parquet or \.jsonl"):
        ResultStore(tmp_path / "scan.csv")
    (tmp_path / "file").write_text("")
    with pytest.raises(OutputError, match="is not a folder"):
        ResultStore(tmp_path / "file" / "scan.jsonl")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"[1, 2]", "must hold an object"),
        (b'{"path": "/v/a.mkv"}', "'settings_hash' is missing"),
        (b'{"path": "/v/a.mkv", "settings_hash": "s1", "content_hash": 7}', "'content_hash' must be"),
        (b'{"path": "/v/a.mkv", "settings_hash": "s1", "n": 1' + b"0" * 400 + b"}", "digits"),
    ],
)
def test_a_malformed_journal_line_is_one_clear_error(tmp_path, line, message):
    out = tmp_path / "scan.jsonl"
    out.write_bytes(line + b"\n" + json.dumps(_row("/v/b.mkv", content_hash="h2")).encode() + b"\n")
    with pytest.raises(InputFormatError, match=f"scan.jsonl, line 1.*{message}"):
        ResultStore(out)


def test_settings_hash_follows_the_default_detection_network_a_model_names(tmp_path):
    """A model standing alone is protected by the detection network its JSON names: that
    network's files are part of the settings."""
    import shutil

    from vidshield.models.checkpoints import zoo_dir

    for ext in (".safetensors", ".json"):
        shutil.copy(zoo_dir() / f"synthetic-lrcn{ext}", tmp_path / f"model{ext}")
        shutil.copy(zoo_dir() / f"synthetic-lrcn{ext}", tmp_path / f"net{ext}")
    model, net = tmp_path / "model", tmp_path / "net"
    meta = json.loads(model.with_suffix(".json").read_text())
    meta["detector"] = {"network": str(net)}
    model.with_suffix(".json").write_text(json.dumps(meta))
    settings_hash.cache_clear()
    before = settings_hash(ScanSettings(model=str(model)))
    net_meta = json.loads(net.with_suffix(".json").read_text())
    net.with_suffix(".json").write_text(json.dumps({**net_meta, "seed": 1}))
    settings_hash.cache_clear()
    assert settings_hash(ScanSettings(model=str(model))) != before
    settings_hash.cache_clear()  # a named classifier: the model itself detects, the network is not used
    named = ScanSettings(model=str(model), classifier=str(model))
    again = settings_hash(named)
    net.with_suffix(".json").write_text(json.dumps(net_meta))
    settings_hash.cache_clear()
    assert settings_hash(named) == again

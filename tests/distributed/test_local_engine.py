"""The local engine: worker processes give the in-process rows, resume, and survive a killed worker."""

from __future__ import annotations

import json
import os
import shutil
import signal

from tests.distributed.conftest import SETTINGS, without_timing

from vidshield.cli import main
from vidshield.distributed.corpus import list_videos, read_rows, scan_corpus, scan_one


def test_local_engine_rows_equal_in_process_rows(corpus, local_scan):
    report, rows = local_scan
    expected = [scan_one(path, SETTINGS) for path in list_videos(corpus)]
    assert without_timing(rows) == without_timing(expected)
    assert report["videos"] == report["scanned"] == 5
    assert report["errors"] == 2  # the 2-frame clip and the file that is not a video
    assert report["frames"] == 3 * 24
    assert (report["skipped"], report["retried"], report["workers_lost"]) == (0, 0, 0)


def test_cli_resumes_and_rescans_only_what_changed(corpus, local_scan, tmp_path):
    _, rows = local_scan
    src = tmp_path / "corpus"
    shutil.copytree(corpus, src)
    out = tmp_path / "scan.jsonl"
    moved = [{**row, "path": row["path"].replace(str(corpus), str(src))} for row in rows]
    out.write_text("".join(json.dumps(row) + "\n" for row in moved))
    (src / "a" / "clean0.mkv").write_bytes((src / "a" / "nested" / "clean3.mkv").read_bytes())  # content changed

    assert main(["scan-corpus", str(src), "--out", str(out), "--workers", "1", "--model", SETTINGS.model]) == 0
    after = {row["path"]: row for row in read_rows(out)}
    assert len(after) == 5
    changed = after[str(src / "a" / "clean0.mkv")]
    assert changed["content_hash"] == after[str(src / "a" / "nested" / "clean3.mkv")]["content_hash"]
    assert changed["class_after"] == after[str(src / "a" / "nested" / "clean3.mkv")]["class_after"]
    assert out.read_text().count("\n") == 6  # 5 rows + the changed file's new row; the others were skipped

    report = scan_corpus(src, out, SETTINGS, retry_errors=True)
    assert (report["scanned"], report["skipped"], report["errors"]) == (2, 3, 2)


def test_cli_bad_output_is_one_line_and_status_2(corpus, tmp_path, capsys):
    assert main(["scan-corpus", str(corpus), "--out", str(tmp_path / "scan.csv")]) == 2
    assert "must end in .parquet or .jsonl" in capsys.readouterr().err


def test_killed_workers_lose_only_their_videos(corpus, local_scan, tmp_path):
    """One worker is killed while it holds spliced.mkv: that video is retried and its row is the
    same. short.mkv kills its worker every time: after max_attempts it gets an error row."""
    _, rows = local_scan
    once, always = str(corpus / "spliced.mkv"), str(corpus / "short.mkv")
    killed = []

    def on_event(kind, info):
        if kind == "dispatch" and (info["path"] == always or (info["path"] == once and once not in killed)):
            os.kill(info["pid"], signal.SIGKILL)
            killed.append(info["path"])

    out = tmp_path / "scan.parquet"
    report = scan_corpus(corpus, out, SETTINGS, workers=2, max_attempts=2, on_event=on_event)
    assert sorted(killed) == [always, always, once]
    assert (report["workers_lost"], report["retried"], report["scanned"]) == (3, 2, 5)
    got = {row["path"]: row for row in read_rows(out)}
    assert got.pop(always)["error"] == (
        "RuntimeError: the worker scanning it was lost 2 times (crashed, killed or out of memory)"
    )
    assert without_timing(list(got.values())) == without_timing([row for row in rows if row["path"] != always])

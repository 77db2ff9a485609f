"""Fuzz: `vidshield scan` on about a hundred damaged files ends in exit 0, or exit 2 with exactly
one line on stderr; never a traceback, never a hang (each file runs in its own process with a
time bound). The corpus is deterministic (tests/io/fuzz_corpus.py, seed 0)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import torch
from tests.io.fuzz_corpus import make_corpus

from vidshield.checkpoint import save_checkpoint
from vidshield.defenses.spatial import ComDefend
from vidshield.defenses.spatial.comdefend import ARCHITECTURE
from vidshield.models import create_model, save_model

REPO = Path(__file__).resolve().parents[2]
PER_FILE_SECONDS = 60
WORKERS = 2


def _run_workers(files: list[Path], args: list[str], tmp: Path) -> list[dict]:
    jobs = []
    for w in range(WORKERS):
        cwd = tmp / f"work{w}"
        cwd.mkdir()
        job = {
            "files": [os.fsencode(f).hex() for f in files[w::WORKERS]],
            "args": args,
            "timeout": PER_FILE_SECONDS,
            "cwd": str(cwd),
        }
        (tmp / f"job{w}.json").write_text(json.dumps(job))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)])}
        cmd = [sys.executable, "-m", "tests.io.fuzz_runner", str(tmp / f"job{w}.json"), str(tmp / f"res{w}.json")]
        jobs.append(subprocess.Popen(cmd, cwd=REPO, env=env))
    for p in jobs:
        assert p.wait(timeout=PER_FILE_SECONDS * len(files)) == 0
    rows = []
    for w in range(WORKERS):
        for row in json.loads((tmp / f"res{w}.json").read_text()):
            row["file"] = os.fsdecode(bytes.fromhex(row["file"]))
            row["cwd"] = tmp / f"work{w}"
            rows.append(row)
    return rows


@pytest.fixture(scope="module")
def fuzz_results(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fuzz")
    files = make_corpus(tmp / "corpus", seed=0)
    torch.manual_seed(0)
    lrcn = save_model(create_model("test-lrcn", num_classes=10), tmp / "lrcn")
    comdefend = save_checkpoint(tmp / "comdefend", ComDefend().state_dict(), {"architecture": ARCHITECTURE})
    start = time.perf_counter()
    rows = _run_workers(files, ["--model", str(lrcn), "--comdefend", str(comdefend)], tmp)
    elapsed = time.perf_counter() - start
    counts = Counter(r["rc"] for r in rows)
    print(f"fuzz corpus: {len(rows)} files, exit statuses {dict(counts)}, {elapsed:.1f} s")
    return {Path(r["file"]).name: r for r in rows}


def test_corpus_is_deterministic(tmp_path):
    a = make_corpus(tmp_path / "a", seed=0)
    b = make_corpus(tmp_path / "b", seed=0)
    assert len(a) >= 100
    assert [p.name for p in a] == [p.name for p in b]
    assert all(x.read_bytes() == y.read_bytes() for x, y in zip(a, b))


def test_every_file_ends_in_ok_or_one_line_exit_2(fuzz_results):
    assert len(fuzz_results) >= 100
    for name, r in fuzz_results.items():
        shown = name.encode("utf-8", "surrogateescape")
        assert r["rc"] is not None, f"{shown}: no exit within {PER_FILE_SECONDS} s"
        assert "Traceback" not in r["stderr"], f"{shown}: {r['stderr']}"
        assert r["rc"] in (0, 2), f"{shown}: exit {r['rc']}: {r['stderr']}"
        if r["rc"] == 2:
            lines = r["stderr"].splitlines()
            assert len(lines) == 1 and lines[0].startswith("error: "), f"{shown}: {r['stderr']!r}"
            assert "\x1b" not in lines[0]
    statuses = Counter(r["rc"] for r in fuzz_results.values())
    assert statuses[0] >= 30 and statuses[2] >= 15  # the corpus exercises both outcomes


def test_known_causes_give_their_one_line(fuzz_results):
    expect_error = {
        "two_frames.mkv": "only 2 decodable frame(s); detection needs at least 3",
        "one_frame.mp4": "only 1 decodable frame(s)",
        "sliver.mkv": "too elongated",
    }
    for name, text in expect_error.items():
        assert fuzz_results[name]["rc"] == 2 and text in fuzz_results[name]["stderr"], fuzz_results[name]
    # a resolution change midway is scaled to the first frame's size; odd names are plain text
    for name in ("size_change.ts", "$\\alpha^{2}$ and $x_1$.mkv", "%s{}%d.mkv", "new\nline.mkv"):
        assert fuzz_results[name]["rc"] == 0, fuzz_results[name]
    odd = [n for n in fuzz_results if n.startswith(("clip_", "esc", "xxxx"))]
    assert len(odd) == 3 and all(fuzz_results[n]["rc"] == 0 for n in odd)
    long_name = next(n for n in odd if n.startswith("xxxx"))
    reports = [p.name for p in fuzz_results[long_name]["cwd"].glob("xxxx*.scan.json")]
    assert len(reports) == 1 and len(os.fsencode(reports[0])) <= 255


def test_truncated_streams_without_a_frame_count_are_reported(fuzz_results):
    truncated = {n: r for n, r in fuzz_results.items() if "truncate" in n and n.endswith((".ts", ".y4m"))}
    ok = {n: r for n, r in truncated.items() if r["rc"] == 0}
    assert ok, "no truncated TS/Y4M file decoded far enough to scan"
    for name, r in ok.items():
        report = json.loads((r["cwd"] / f"{name}.scan.json").read_text())
        assert report["frames_declared"] is None and report["frames_decoded"] < 20
        assert any("looks truncated" in w for w in report["warnings"]), (name, report["warnings"])

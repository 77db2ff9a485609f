"""A small corpus shared by the corpus-scan tests: two clean synthetic clips, one clip with four
frames spliced in from another class (a sparse verdict: the temporal defense runs), a 2-frame
clip (too short), a file that is not a video, all at the shipped CNN+LSTM's 64x64 view; and one
local-engine scan of it to compare the other runs with."""

from __future__ import annotations

import pytest
import torch

from vidshield.distributed.corpus import ScanSettings, read_rows, scan_corpus

SETTINGS = ScanSettings(model="synthetic-lrcn")  # shipped, paper thresholds, ComDefend, QP 36, on the CPU


def without_timing(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    from vidshield.data.synthetic import generate_clip
    from vidshield.io import write_video

    root = tmp_path_factory.mktemp("corpus")
    clip = {
        label: generate_clip(label, generator=torch.Generator().manual_seed(label), frames=24, height=64, width=64)
        for label in (0, 3, 5)
    }
    spliced = clip[0].clone()
    spliced[[3, 7, 11, 19]] = clip[5][[3, 7, 11, 19]]
    (root / "a" / "nested").mkdir(parents=True)
    write_video(root / "a" / "clean0.mkv", clip[0], fps=25.0)
    write_video(root / "a" / "nested" / "clean3.mkv", clip[3], fps=25.0)
    write_video(root / "spliced.mkv", spliced, fps=25.0)
    write_video(root / "short.mkv", clip[3][:2], fps=25.0)
    (root / "garbage.mp4").write_bytes(b"this is not a video file")
    (root / "notes.txt").write_text("not a video: ignored by the folder listing\n")
    return root


@pytest.fixture(scope="session")
def local_scan(corpus, tmp_path_factory):
    """The corpus scanned by the local engine with 2 workers into Parquet: (report, rows)."""
    out = tmp_path_factory.mktemp("local") / "scan.parquet"
    report = scan_corpus(corpus, out, SETTINGS, engine="local", workers=2)
    return report, read_rows(out)

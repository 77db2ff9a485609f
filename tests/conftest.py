"""Shared fixtures: a seeded generator, a small smooth moving video, a lossless file of it, and the
locations of the optional real media and data (tests that use them skip when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

REPO_ROOT = Path(__file__).resolve().parents[1]


def pytest_configure(config):
    # The development machines are small and shared: one intra-op thread per test process.
    torch.set_num_threads(1)


def assert_valid_scan_report(report: dict) -> None:
    """``report`` fits the versioned scan-report schema, and its verdict agrees with its fields."""
    import jsonschema

    from vidshield.schema import SCAN_REPORT_SCHEMA

    jsonschema.validate(report, SCAN_REPORT_SCHEMA)
    if report["in_domain"] is not False:
        assert report["verdict"] == report["detector_verdict"]
    assert report["frames_decoded"] == report["num_frames"]
    if report["truncated"]:
        assert report["frames_declared"] is None or report["frames_declared"] > report["frames_decoded"]


@pytest.fixture(autouse=True)
def _every_scan_report_is_schema_checked(monkeypatch):
    """Every report any test makes in-process (``scan``, the service, the corpus) is validated."""
    import vidshield.pipeline as pipeline

    made = pipeline.scan_report

    def checked(*args, **kwargs):
        report = made(*args, **kwargs)
        assert_valid_scan_report(report)
        return report

    monkeypatch.setattr(pipeline, "scan_report", checked)


@pytest.fixture
def rng() -> torch.Generator:
    """A ``torch.Generator`` seeded with 0."""
    return torch.Generator().manual_seed(0)


def make_moving_video(
    frames: int = 8, height: int = 32, width: int = 48, *, dy: int = 1, dx: int = 2, seed: int = 0
) -> torch.Tensor:
    """A smooth random texture translated by ``(dy, dx)`` whole pixels per frame.

    Frame ``t`` is the window of the texture at offset ``(t*dy, t*dx)`` (so frame t+1 equals frame t
    shifted up by ``dy`` and left by ``dx``). Values are multiples of 1/255, so uint8 round trips
    are exact.

    Returns:
        float32 ``(frames, 3, height, width)`` in [0, 1].
    """
    g = torch.Generator().manual_seed(seed)
    th, tw = height + abs(dy) * (frames - 1), width + abs(dx) * (frames - 1)
    noise = torch.rand(1, 3, th + 8, tw + 8, generator=g)
    texture = F.avg_pool2d(noise, kernel_size=9, stride=1)[0]  # (3, th, tw), smooth
    lo, hi = texture.amin(), texture.amax()
    texture = ((texture - lo) / (hi - lo) * 255).round() / 255
    oy, ox = (0 if dy >= 0 else th - height), (0 if dx >= 0 else tw - width)
    clips = [texture[:, oy + t * dy : oy + t * dy + height, ox + t * dx : ox + t * dx + width] for t in range(frames)]
    return torch.stack(clips).contiguous()


@pytest.fixture
def moving_video() -> torch.Tensor:
    """float32 ``(T=8, 3, H=32, W=48)`` in [0, 1]: a smooth random texture whose content moves
    up 1 px and left 2 px per frame (:func:`make_moving_video`, dy=1, dx=2). Deterministic."""
    return make_moving_video()


@pytest.fixture
def lossless_video_file(tmp_path, moving_video) -> Path:
    """``moving_video`` written losslessly (FFV1 in .mkv) to a temporary file."""
    from vidshield.io import write_video

    return write_video(tmp_path / "moving.mkv", moving_video, fps=25.0)


def _shared_dir(env: str, default: Path) -> Path:
    return Path(os.environ[env]) if os.environ.get(env) else default


@pytest.fixture
def media_dir() -> Path:
    """Real sample videos (``$VIDSHIELD_MEDIA`` or ``../shared/media``); skips when absent."""
    path = _shared_dir("VIDSHIELD_MEDIA", REPO_ROOT.parent / "shared" / "media")
    if not path.is_dir():
        pytest.skip(f"media folder not found: {path} (set VIDSHIELD_MEDIA)")
    return path


@pytest.fixture
def data_root() -> Path:
    """The data root (``$VIDSHIELD_DATA`` or ``../shared/data``); skips when absent."""
    path = _shared_dir("VIDSHIELD_DATA", REPO_ROOT.parent / "shared" / "data")
    if not path.is_dir():
        pytest.skip(f"data root not found: {path} (set VIDSHIELD_DATA)")
    return path

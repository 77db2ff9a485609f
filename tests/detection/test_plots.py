import numpy as np
import pytest

from vidshield.detection import roc
from vidshield.detection.plots import plot_label_strips, plot_roc_curves, plot_score_distributions

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_figures_are_written_as_png(tmp_path):
    f2 = plot_score_distributions(
        {"clean": [0.0, 0.05], "sparse": [0.2, 0.25], "dense": [0.4, 0.5]},
        tmp_path / "fig2.png",
        gamma1=0.175,
        gamma2=0.3,
    )
    f3 = plot_label_strips(
        [("clean", [0] * 16), ("sparse attack", [0, 0, 3, 0] * 4)],
        tmp_path / "fig3.png",
        class_names=["a", "b", "c", "d"],
    )
    curves = {"alpha": roc([0.0, 0.1], [0.2, 0.3]), "flip_rate": roc([0.0, 0.2], [0.1, 0.3])}
    f4 = plot_roc_curves({"clean vs adversarial": curves, "sparse vs dense": curves}, tmp_path / "fig4.png")
    for f in (f2, f3, f4):
        data = f.read_bytes()
        assert data.startswith(PNG_MAGIC) and 1_000 < len(data) < 500_000


def test_figure_errors(tmp_path):
    with pytest.raises(ValueError, match="at least one score"):
        plot_score_distributions({"clean": []}, tmp_path / "x.png")
    with pytest.raises(ValueError, match="at least 3 frames"):
        plot_label_strips([("short", [0, 1])], tmp_path / "x.png")
    with pytest.raises(ValueError):
        plot_roc_curves({}, tmp_path / "x.png")


def _report(**over):
    windows = [
        {"start": 0, "verdict": "clean", "alpha": 0.0, "score": 0.2, "frame_labels": [1] * 8, "exception_frames": []},
        {"start": 8, "verdict": "sparse", "alpha": 0.25, "score": 1.7, "frame_labels": [1, 1, 3, 1, 1, 4, 1, 1],
         "exception_frames": [2, 5]},
        {"start": 12, "verdict": "clean", "alpha": 0.0, "score": 0.1, "frame_labels": [2] * 8, "exception_frames": []},
    ]  # fmt: skip
    report = {"video": "/x/clip.mkv", "verdict": "sparse", "detector_verdict": "sparse", "in_domain": True,
              "num_frames": 20, "gamma1": 1.0, "gamma2": 5.0, "score_name": "feature_spike",
              "exception_frames": [10, 13], "windows": windows, "label_space": ["a", "b", "c", "d", "e"]}  # fmt: skip
    return {**report, **over}


def test_the_scan_timeline_is_made_from_the_reports_numbers():
    from vidshield.detection.plots import scan_timeline

    spec = scan_timeline(_report())
    assert spec["fired"] == [(8, 16)]  # the shaded windows are the fired ones, nothing else
    assert [w[2] for w in spec["windows"]] == [0.2, 1.7, 0.1] and (spec["gamma1"], spec["gamma2"]) == (1.0, 5.0)
    assert spec["labels"] == [1] * 8 + [1, 1, 3, 1] + [2] * 8  # the later window wins the overlap
    assert spec["exception_frames"] == [10, 13] and spec["title"].startswith("clip.mkv: SPARSE   (in domain, 20")
    outside = scan_timeline(_report(verdict="out_of_domain", in_domain=False, truncated=True))
    assert outside["title"].startswith("clip.mkv: OUT OF DOMAIN (no verdict; the detector alone: sparse)")
    assert "out of domain, 20 frames, truncated file" in outside["title"]


def test_the_scan_picture_draws_thumbnails_and_stays_readable_with_a_huge_gamma2(tmp_path):
    from PIL import Image

    from vidshield.detection.plots import plot_scan_timeline

    thumbs = {t: np.full((36, 48, 3), 10 * t, np.uint8) for t in (0, 10, 19)}
    for gamma2 in (5.0, 1e6):
        path = plot_scan_timeline(_report(gamma2=gamma2), tmp_path / f"s{gamma2}.png", thumbnails=thumbs)
        with Image.open(path) as im:
            assert im.format == "PNG" and im.width > 600 and im.height > 300

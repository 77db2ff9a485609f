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

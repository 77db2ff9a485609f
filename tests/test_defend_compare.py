"""``defend --compare``: a picture of the frames the defense rebuilt, before, after and their
amplified difference, made from the two files' own frames."""

import json

import numpy as np

from vidshield.cli import main
from vidshield.pipeline import DefendResult, comparison_frames, read_frame_pairs
from vidshield.plotting import before_after_difference


def test_the_frames_shown_are_the_rebuilt_ones_else_spread_over_the_video():
    rebuilt = DefendResult(output="o", num_frames=40, size=(8, 8), fps=25.0, temporal_frames=[1, 3, 5, 7, 9, 11, 13, 15],
                           spatial_frames=0)  # fmt: skip
    assert comparison_frames(rebuilt) == [1, 5, 9, 13]
    spatial = DefendResult(output="o", num_frames=10, size=(8, 8), fps=25.0, temporal_frames=[], spatial_frames=10)
    assert comparison_frames(spatial) == [0, 3, 6, 9]
    a = np.full((4, 4, 3), 100, np.uint8)
    b = a.copy()
    b[0, 0] = (110, 90, 100)
    diff = before_after_difference(a, b, amplify=8)
    assert diff[0, 0].tolist() == [80, 80, 0] and int(diff.sum()) == 160


def test_defend_compare_writes_the_picture_of_the_rebuilt_frames(tmp_path, lossless_video_file, capsys):
    from PIL import Image

    out, png = tmp_path / "o.mkv", tmp_path / "c.png"
    args = ["defend", str(lossless_video_file), "-o", str(out), "--method", "temporal", "--frames", "2,5"]
    assert main([*args, "--compare", str(png), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["compare"]["frames"] == summary["polluted_frames"] == [2, 5]
    with Image.open(png) as im:
        assert im.format == "PNG"
    pairs = read_frame_pairs(lossless_video_file, out, [0, 2])
    assert [t for t, _, _ in pairs] == [0, 2]
    assert np.array_equal(pairs[0][1], pairs[0][2])  # frame 0 was not rebuilt: unchanged
    assert not np.array_equal(pairs[1][1], pairs[1][2])  # frame 2 was rebuilt

"""The one manifest reader: both shapes, the format, per-clip fields, and paths kept inside."""

import json

import pytest

from vidshield.attacks.dataset import SET_FORMAT, read_set_manifest
from vidshield.data import MANIFEST_NAME, read_manifest
from vidshield.detection import collect_videos
from vidshield.errors import DataRootError, InputFormatError


def _write(folder, obj):
    (folder / MANIFEST_NAME).write_text(json.dumps(obj))


def test_a_list_or_an_object_with_clips(tmp_path):
    clips = [{"file": "a.mkv", "success": True}, {"file": "sub/b.mkv", "success": False}, {"file": "c.mkv"}]
    _write(tmp_path, clips)
    assert read_manifest(tmp_path) == {"clips": clips}
    _write(tmp_path, {"attack": "x", "clips": clips})
    assert read_manifest(tmp_path) == {"attack": "x", "clips": clips}
    for name in ("a.mkv", "sub/b.mkv", "c.mkv"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p, _ in collect_videos(tmp_path)] == ["a.mkv", "c.mkv"]  # the failed attack left out
    assert [p.name for p, _ in collect_videos(tmp_path, successful_only=False)] == ["a.mkv", "b.mkv", "c.mkv"]


@pytest.mark.parametrize(
    "obj, reason",
    [
        ({"clips": "a.mkv"}, "'clips' must be a list"),
        ([["a.mkv"]], "every clip entry must be an object"),
        ([{"name": "a.mkv"}], "'file'"),
        ([{"file": 3}], "'file' must be a string"),
        ([{"file": "a.mkv", "success": "yes"}], "'success' must be"),
        ([{"file": "../a.mkv"}], "outside the set folder"),
    ],
)
def test_bad_manifests_are_refused_by_every_reader(tmp_path, obj, reason):
    _write(tmp_path, obj)
    for read in (read_manifest, collect_videos):
        with pytest.raises(InputFormatError, match=reason):
            read(tmp_path)


def test_an_adversarial_set_needs_its_format_and_fields(tmp_path):
    with pytest.raises(DataRootError, match="manifest.json not found"):
        read_set_manifest(tmp_path)
    clip = {"index": 0, "file": "c.mkv", "label": 1, "pred_before": 1, "pred_after": 0, "success": True}
    clip.update(perturbed_frames=2, l21=0.5, linf=0.1, mean_abs_255=0.3)
    _write(tmp_path, [clip])
    with pytest.raises(InputFormatError, match="must hold an object"):  # a bare list has no format
        read_set_manifest(tmp_path)
    _write(tmp_path, {"format": "other/1", "clips": [clip]})
    with pytest.raises(InputFormatError, match=f"not a {SET_FORMAT} manifest"):
        read_set_manifest(tmp_path)
    _write(tmp_path, {"format": SET_FORMAT, "clips": [clip]})
    assert read_set_manifest(tmp_path)["clips"] == [clip]
    _write(tmp_path, {"format": SET_FORMAT, "clips": [{**clip, "linf": -1}]})
    with pytest.raises(InputFormatError, match="'linf' must lie in"):
        read_set_manifest(tmp_path)
    _write(tmp_path, {"format": SET_FORMAT, "clips": [{k: v for k, v in clip.items() if k != "label"}]})
    with pytest.raises(InputFormatError, match="'label'"):
        read_set_manifest(tmp_path)

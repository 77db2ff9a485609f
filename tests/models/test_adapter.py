"""The adapter: foreign modules in both layouts, dict input, ``.logits`` output, TorchScript files;
bad layouts, wrong output shapes and non-TorchScript files get one clear error."""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass

import pytest
import torch
from torch import nn

from vidshield.cli import main
from vidshield.models.adapter import (
    ClassifierError,
    classifier_hash,
    is_torchscript_archive,
    load_classifier,
    resample_video,
    wrap_classifier,
)
from vidshield.models.base import InputSpec

T, H, W, K = 4, 8, 10, 3


def channel_logits(x: torch.Tensor) -> torch.Tensor:
    """``(N, 3, ...)`` -> the per-channel means: the logits of a 'dominant colour' classifier."""
    return x.flatten(2).mean(-1)


class Ncthw(nn.Module):
    """A 3D-CNN-style module: takes ``(N, C, T, H, W)``, refuses anything else."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x):
        assert x.shape[1:] == (3, T, H, W), f"expected (N, 3, {T}, {H}, {W}), got {tuple(x.shape)}"
        return channel_logits(x) * self.scale


class Ntchw(nn.Module):
    """A video-transformer-style module: ``(N, T, C, H, W)`` -> ``(N, K)``."""

    def forward(self, x):
        if x.shape[1:] != (T, 3, H, W):
            raise RuntimeError(f"expected (N, {T}, 3, {H}, {W}), got {tuple(x.shape)}")
        return channel_logits(x.transpose(1, 2))


@dataclass
class HFOutput:
    logits: torch.Tensor


class HFStyle(nn.Module):
    """Hugging Face style: ``forward(pixel_values (N, T, C, H, W))`` returns an object with ``.logits``."""

    def forward(self, pixel_values):
        return HFOutput(logits=channel_logits(pixel_values.transpose(1, 2)))


class DictInput(nn.Module):
    """``forward(batch: dict)`` reading ``batch["video"]`` in NCTHW."""

    def forward(self, batch: dict[str, torch.Tensor]):
        return channel_logits(batch["video"])


def red_green_blue_clips() -> torch.Tensor:
    """Three clips, dominant colour red, green, blue: the right labels are 0, 1, 2."""
    v = torch.full((3, T, 3, H, W), 0.2)
    for i in range(3):
        v[i, :, i] = 0.9
    return v


@pytest.mark.parametrize(
    "module, layout, kwargs",
    [
        (Ncthw(), "NCTHW", {}),
        (Ntchw(), "NTCHW", {}),
        (HFStyle(), "NTCHW", {}),
        (DictInput(), "NCTHW", {"input_key": "video"}),
        (Ntchw(), "NTCHW", {"output": lambda out: out * 2}),
    ],
    ids=["ncthw", "ntchw", "hf-logits", "dict-input", "callable-output"],
)
def test_wrapped_modules_classify_in_their_layout(module, layout, kwargs):
    clf = wrap_classifier(
        module, layout=layout, frames=T, height=H, width=W, class_names=["red", "green", "blue"], **kwargs
    )
    assert clf.num_classes == K and clf.input_spec == InputSpec(T, H, W, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    assert clf(red_green_blue_clips()).argmax(-1).tolist() == [0, 1, 2]
    assert not clf.has_frame_logits


def test_normalisation_is_applied_before_the_module():
    clf = wrap_classifier(
        Ntchw(), layout="NTCHW", frames=T, height=H, width=W, mean=(0.5, 0.5, 0.5), std=(0.25, 0.5, 1)
    )
    x = torch.full((1, T, 3, H, W), 0.75)
    assert torch.allclose(clf(x), torch.tensor([[1.0, 0.5, 0.25]]))


def test_number_of_classes_comes_from_the_output():
    assert wrap_classifier(Ncthw(), frames=T, height=H, width=W).num_classes == K


def test_bad_layout_and_layout_that_does_not_fit():
    with pytest.raises(ClassifierError, match="layout must be one of NCTHW, NTCHW"):
        wrap_classifier(Ncthw(), layout="NHWC", frames=T, height=H, width=W)
    with pytest.raises(ClassifierError, match=r"fails on a NTCHW input of shape \(1, 4, 3, 8, 10\): expected"):
        wrap_classifier(Ncthw(), layout="NTCHW", frames=T, height=H, width=W)
    with pytest.raises(ClassifierError, match="fails on a NCTHW input"):
        wrap_classifier(Ntchw(), layout="NCTHW", frames=T, height=H, width=W)


def test_wrong_output_shape():
    class PerFrame(nn.Module):
        def forward(self, x):  # (N, C, T, H, W) -> (N, T, K): not a video classifier
            return x.mean((-2, -1)).transpose(1, 2)

    with pytest.raises(ClassifierError, match=r"returned \(1, 4, 3\) for one clip"):
        wrap_classifier(PerFrame(), frames=T, height=H, width=W)
    with pytest.raises(ClassifierError, match="returns 3 logits but 5 class names"):
        wrap_classifier(Ncthw(), frames=T, height=H, width=W, class_names=list("abcde"))
    with pytest.raises(ClassifierError, match="cannot find logits"):
        wrap_classifier(nn.Identity(), frames=T, height=H, width=W, output="logits", input_key="video")


def test_wrong_clip_size_at_run_time():
    clf = wrap_classifier(Ncthw(), frames=T, height=H, width=W)
    with pytest.raises(ClassifierError, match="expects clips of 4x8x10"):
        clf(torch.rand(1, T + 1, 3, H, W))


def save_torchscript(tmp_path, module, spec: dict | None, *, layout="NCTHW", name="model.pt"):
    """``torch.jit.trace`` on one clip of ``layout``, then ``torch.jit.save``."""
    path = tmp_path / name
    example = torch.rand(1, 3, T, H, W) if layout == "NCTHW" else torch.rand(1, T, 3, H, W)
    with warnings.catch_warnings():  # the shape checks inside forward become constants (TracerWarning)
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(module, example)
    torch.jit.save(traced, str(path))
    if spec is not None:
        path.with_suffix(".json").write_text(json.dumps(spec))
    return path


SPEC = {"layout": "NCTHW", "frames": T, "height": H, "width": W, "class_names": ["red", "green", "blue"]}


def test_torchscript_file_with_a_json_beside_it(tmp_path):
    path = save_torchscript(tmp_path, Ncthw(), SPEC)
    assert is_torchscript_archive(path)
    clf = load_classifier(path)
    assert clf.class_names == ["red", "green", "blue"] and clf.source == str(path)
    assert clf(red_green_blue_clips()).argmax(-1).tolist() == [0, 1, 2]
    # the same weights hash the same as the eager module they came from
    assert classifier_hash(clf) == classifier_hash(wrap_classifier(Ncthw(), frames=T, height=H, width=W))


def test_torchscript_with_an_inline_spec_and_missing_spec(tmp_path):
    path = save_torchscript(tmp_path, Ntchw(), None, layout="NTCHW")
    with pytest.raises(ClassifierError, match="no input spec; pass --input-spec"):
        load_classifier(path)
    clf = load_classifier(path, input_spec=json.dumps({**SPEC, "layout": "NTCHW"}))
    assert clf.layout == "NTCHW"
    with pytest.raises(ClassifierError, match="unknown keys"):
        load_classifier(path, input_spec={**SPEC, "colour": "rgb"})


def test_pickles_and_state_dicts_are_refused(tmp_path):
    state = tmp_path / "state.pt"
    torch.save(Ncthw().state_dict(), state)  # a zip of pickles, not TorchScript
    legacy = tmp_path / "legacy.pth"
    torch.save(Ncthw(), legacy, _use_new_zipfile_serialization=False)
    for path in (state, legacy):
        path.with_suffix(".json").write_text(json.dumps(SPEC))
        assert not is_torchscript_archive(path)
        with pytest.raises(ClassifierError, match="is not a TorchScript archive"):
            load_classifier(path)


def test_cli_refuses_a_pickle_with_one_line(tmp_path, capsys, lossless_video_file):
    state = tmp_path / "state.pt"
    torch.save(Ncthw().state_dict(), state)
    rc = main(["scan", str(lossless_video_file), "--model", "synthetic-lrcn", "--classifier", str(state)])
    err = capsys.readouterr().err
    assert rc == 2 and "not a TorchScript archive" in err and len(err.strip().splitlines()) == 1


def test_resample_video_gives_each_model_its_own_view():
    video = torch.arange(8, dtype=torch.float32).view(1, 8, 1, 1, 1).expand(2, 8, 3, 6, 6) / 8
    out = resample_video(video, InputSpec(4, 3, 3))
    assert out.shape == (2, 4, 3, 3, 3)
    # frames round(linspace(0, 7, 4)) = 0, 2, 5, 7, each constant so resizing keeps its value
    assert out[0, :, 0, 0, 0].mul(8).round().tolist() == [0, 2, 5, 7]
    assert resample_video(video, InputSpec(8, 6, 6)) is video
    assert resample_video(video, InputSpec(4, 3, 3), time=False).shape == (2, 8, 3, 3, 3)

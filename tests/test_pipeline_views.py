"""Each model gets its own view: a classifier whose clip size differs from the detector's is given
its own frames and frame size; a scan with a false-alarm budget defends only flagged videos."""

import torch
from tests.test_pipeline import ColourClassifier, Recorder, painted
from torch import nn

from vidshield.detection import DetectorConfig, TemporalConsistencyDetector
from vidshield.io import write_video
from vidshield.models.adapter import wrap_classifier
from vidshield.pipeline import DefensePipeline, scan_file, working_spec


class Spy(nn.Module):
    """An NCTHW 'dominant colour' classifier that records the shapes it is called on."""

    def __init__(self):
        super().__init__()
        self.shapes = []

    def forward(self, x):
        self.shapes.append(tuple(x.shape))
        return x.flatten(2).mean(-1) * 10


def test_classifier_gets_its_own_clip_length_and_frame_size():
    detector_model = ColourClassifier()  # 10 x 16 x 16
    spy = Spy()
    classifier = wrap_classifier(spy, layout="NCTHW", frames=4, height=24, width=20)
    pipe = DefensePipeline(
        classifier, TemporalConsistencyDetector(detector_model, gamma1=0.05), temporal=Recorder(), spatial=Recorder()
    )
    spy.shapes.clear()
    (r,) = pipe.run(painted([2] * 10))
    assert spy.shapes == [(1, 3, 4, 24, 20)]
    assert r.verdict == "clean" and r.label == 2 and len(r.frame_labels) == 10


def test_detector_gets_its_own_frame_size_from_a_larger_view():
    detector_model = ColourClassifier()
    classifier = wrap_classifier(Spy(), layout="NCTHW", frames=10, height=32, width=32)
    pipe = DefensePipeline(
        classifier, TemporalConsistencyDetector(detector_model, gamma1=0.05), temporal=Recorder(), spatial=Recorder()
    )
    assert (working_spec(pipe).frames, working_spec(pipe).height) == (10, 32)
    big = torch.nn.functional.interpolate(painted([1, 1, 1, 0, 1, 1, 1, 1, 1, 1]), size=(32, 32))
    (r,) = pipe.run(big)
    assert r.verdict == "sparse" and r.exception_frames == [3] and r.defended.shape == (10, 3, 32, 32)


def _clip(tmp_path, windows_labels):
    frames = torch.cat([painted(labels) for labels in windows_labels])
    return write_video(tmp_path / "clip.mkv", frames, fps=25.0)


def test_scan_with_a_budget_defends_only_when_the_video_is_flagged(tmp_path):
    """Four windows of 10 frames, one with an exception frame. Without a budget the video is
    flagged and that window defended; with a 1 % window budget a 4-window clean video may fire once
    (P(X >= 1) = 3.9 % > 1 %), so the verdict is clean and nothing is defended; two firing windows
    (P(X >= 2) = 0.06 %) are flagged."""
    model = ColourClassifier()
    one = _clip(tmp_path, [[1] * 10, [1, 1, 1, 0, 1, 1, 1, 1, 1, 1], [1] * 10, [1] * 10])
    for target_fpr, verdict, calls in ((None, "sparse", 1), (0.01, "clean", 0)):
        det = TemporalConsistencyDetector.from_config(DetectorConfig(gamma1=0.05, target_fpr=target_fpr), model)
        pipe = DefensePipeline(model, det, temporal=Recorder(), spatial=Recorder())
        result = scan_file(pipe, one)
        assert [s for s, _ in result.windows] == [0, 10, 20, 30]
        assert result.verdict == verdict and result.windows_fired == 1 and len(pipe.temporal.calls) == calls
        assert result.windows_allowed == (None if target_fpr is None else 1)
    two = _clip(tmp_path, [[1] * 10, [1, 1, 1, 0, 1, 1, 1, 1, 1, 1], [1] * 10, [2, 2, 2, 2, 2, 1, 2, 2, 2, 2]])
    det = TemporalConsistencyDetector.from_config(DetectorConfig(gamma1=0.05, target_fpr=0.01), model)
    pipe = DefensePipeline(model, det, temporal=Recorder(), spatial=Recorder())
    result = scan_file(pipe, two)
    assert result.verdict == "sparse" and result.windows_fired == 2 and len(pipe.temporal.calls) == 2
    assert [r.defense for _, r in result.windows] == ["none", "temporal", "none", "temporal"]

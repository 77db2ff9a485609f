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


class AtItsView(ColourClassifier):
    """The colour detection network (3 classes, 16 x 16) refusing any other frame size."""

    def frame_logits(self, video):
        assert tuple(video.shape[-2:]) == (16, 16), f"detector called at {tuple(video.shape)}"
        return super().frame_logits(video)


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


def defended(recorder) -> int:
    """Videos a :class:`Recorder` defense was called on."""
    return sum(n for n, _ in recorder.calls)


def _clip(tmp_path, windows_labels):
    frames = torch.cat([painted(labels) for labels in windows_labels])
    return write_video(tmp_path / "clip.mkv", frames, fps=25.0)


def test_scan_with_a_budget_defends_only_when_the_video_is_flagged(tmp_path):
    """Four windows of 10 frames, one with an exception frame. Without a budget the video is
    flagged and that window defended; with a 1 % window budget a 4-window clean video may fire once
    (P(X >= 1) = 3.9 % > 1 %), so the verdict is clean and nothing is defended; two firing windows
    (P(X >= 2) = 0.06 %) are flagged. (Windows go through the defenses in batches: counted by video.)"""
    model = ColourClassifier()
    one = _clip(tmp_path, [[1] * 10, [1, 1, 1, 0, 1, 1, 1, 1, 1, 1], [1] * 10, [1] * 10])
    for target_fpr, verdict, calls in ((None, "sparse", 1), (0.01, "clean", 0)):
        det = TemporalConsistencyDetector.from_config(DetectorConfig(gamma1=0.05, target_fpr=target_fpr), model)
        pipe = DefensePipeline(model, det, temporal=Recorder(), spatial=Recorder())
        result = scan_file(pipe, one)
        assert [s for s, _ in result.windows] == [0, 10, 20, 30]
        assert result.verdict == verdict and result.windows_fired == 1 and defended(pipe.temporal) == calls
        assert result.windows_allowed == (None if target_fpr is None else 1)
    two = _clip(tmp_path, [[1] * 10, [1, 1, 1, 0, 1, 1, 1, 1, 1, 1], [1] * 10, [2, 2, 2, 2, 2, 1, 2, 2, 2, 2]])
    det = TemporalConsistencyDetector.from_config(DetectorConfig(gamma1=0.05, target_fpr=0.01), model)
    pipe = DefensePipeline(model, det, temporal=Recorder(), spatial=Recorder())
    result = scan_file(pipe, two)
    assert result.verdict == "sparse" and result.windows_fired == 2 and defended(pipe.temporal) == 2
    assert [r.defense for _, r in result.windows] == ["none", "temporal", "none", "temporal"]


def test_the_vote_runs_at_the_detectors_view_and_needs_one_label_space():
    """The defended video of a larger view is voted at the detector's frame size; a classifier of
    another label space cannot vote (an error when asked, off by default)."""
    import pytest

    detector_model = AtItsView()
    classifier = wrap_classifier(Spy(), layout="NCTHW", frames=10, height=32, width=32, class_names=["r", "g", "b"])
    # 6 red frames, 4 bright blue ones: the clip mean says blue, the per-frame majority red
    video = torch.nn.functional.interpolate(painted([0] * 6 + [2] * 4), size=(32, 32))
    video[6:, 2] = 1.0
    video[:6, 0] = 0.5
    det = TemporalConsistencyDetector(detector_model, gamma1=0.05, vote=True)
    spatial = nn.Identity()  # the squeeze check purifies at the classifier's view and votes on the result
    pipe = DefensePipeline(classifier, det, temporal=Recorder(), spatial=spatial, squeeze_check=True)
    (r,) = pipe.run(video)
    assert pipe.vote and r.label == 0 and r.label_before == 2 and r.vote_flag and not r.squeezed
    detector_model.metadata = {"detector": {"vote": True}}

    class FourClasses(Spy):
        def forward(self, x):
            return torch.cat([super().forward(x), torch.zeros(x.shape[0], 1)], dim=1)

    other = wrap_classifier(FourClasses(), layout="NCTHW", frames=10, height=32, width=32)
    for asked, kw in ((det, {}), (TemporalConsistencyDetector(detector_model), {"vote": True})):
        with pytest.raises(ValueError, match="label space"):  # asked for by the config or the argument
            DefensePipeline(other, asked, temporal=Recorder(), spatial=Recorder(), **kw)
    default = TemporalConsistencyDetector(detector_model, gamma1=0.05)
    assert default.vote and not DefensePipeline(other, default, temporal=Recorder(), spatial=Recorder()).vote


def test_the_pipeline_attack_sees_each_model_at_its_view():
    """The adaptive attack routes, defends and decides like the pipeline when the classifier's view
    (10 x 32 x 32) is not the detector's (16 x 16): same routes, and its differentiable decision
    gives the pipeline's labels."""
    from vidshield.attacks import PipelineAttack

    detector_model = AtItsView()
    classifier = wrap_classifier(Spy(), layout="NCTHW", frames=10, height=32, width=32, class_names=["r", "g", "b"])
    pipe = DefensePipeline(
        classifier, TemporalConsistencyDetector(detector_model, gamma1=0.05), temporal=Recorder(), spatial=Recorder()
    )
    clips = [[1] * 10, [1, 1, 1, 0, 1, 1, 1, 1, 1, 1], [1, 0, 1, 0, 1, 0, 1, 0, 1, 1]]  # clean, sparse, dense
    videos = torch.nn.functional.interpolate(torch.cat([painted(c) for c in clips]), size=(32, 32)).view(
        3, 10, 3, 32, 32
    )
    attack = PipelineAttack(classifier, pipeline=pipe)
    routes, polluted = attack.routes(videos)
    results = pipe.run(videos)
    assert routes == [r.defense for r in results] == ["none", "temporal", "spatial"]
    assert polluted[1].nonzero().flatten().tolist() == results[1].rebuilt_frames == [3]
    defended = torch.stack([r.defended for r in results])
    assert attack.hard_decision(defended).tolist() == [r.label for r in results]
    pipe.vote = True  # the differentiable vote, too, asks the detection network at its view
    assert attack.decision_logits(defended).argmax(1).tolist() == attack.hard_decision(defended).tolist()

"""The router sends each verdict to the right defense; a clean video is classified as is."""

import pytest
import torch
from torch import nn

from vidshield.defenses import Defense
from vidshield.defenses.temporal import TemporalDefense
from vidshield.detection import TemporalConsistencyDetector
from vidshield.models.base import InputSpec, VideoClassifier
from vidshield.pipeline import DefensePipeline, polluted_frames

SIZE = 16


class ColourClassifier(VideoClassifier):
    """Per-frame label = the frame's dominant primary colour (0 red, 1 green, 2 blue)."""

    has_frame_logits = True

    def __init__(self):
        super().__init__()
        self.input_spec = InputSpec(frames=10, height=SIZE, width=SIZE)
        self.num_classes = 3
        self.scale = nn.Parameter(torch.tensor(10.0))

    def frame_logits(self, video):
        return video.mean(dim=(-2, -1)) * self.scale

    def forward(self, video):
        return self.frame_logits(video).mean(dim=1)

    def forward_with_frames(self, video):
        f = self.frame_logits(video)
        return f.mean(dim=1), f


class Recorder(Defense):
    """Records what it was called on; returns an all-red video so its effect is visible."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def forward(self, video, *, polluted=None, generator=None):
        self.calls.append((video.shape[0], None if polluted is None else polluted.clone()))
        out = torch.full_like(video, 0.1)
        out[:, :, 0] = 0.9
        return out


def painted(labels):
    labels = torch.as_tensor(labels)
    v = torch.full((labels.numel(), 3, SIZE, SIZE), 0.1)
    v[torch.arange(labels.numel()), labels] = 0.9
    return v


CLEAN = [1] * 10
SPARSE = [1, 1, 1, 0, 1, 1, 1, 1, 1, 1]  # one exception frame (alpha = 0.1)
DENSE = [1, 0, 1, 0, 1, 0, 1, 0, 1, 1]  # alpha = 0.7


@pytest.fixture
def model():
    return ColourClassifier()


def make_pipeline(model, **kw):
    detector = TemporalConsistencyDetector(model, gamma1=0.05, gamma2=0.3)
    return DefensePipeline(model, detector, temporal=Recorder(), spatial=Recorder(), **kw)


def test_router_sends_each_verdict_to_its_defense(model):
    pipe = make_pipeline(model)
    videos = torch.stack([painted(CLEAN), painted(SPARSE), painted(DENSE)])
    results = pipe.run(videos)
    assert [r.verdict for r in results] == ["clean", "sparse", "dense"]
    assert [r.defense for r in results] == ["none", "temporal", "spatial"]
    # temporal got the sparse video with exactly its exception frame marked
    ((n, mask),) = pipe.temporal.calls
    assert n == 1 and mask[0].nonzero().flatten().tolist() == [3]
    assert results[1].rebuilt_frames == [3]
    ((n, _),) = pipe.spatial.calls
    assert n == 1
    # the clean video is passed through untouched
    assert torch.equal(results[0].defended, videos[0])


def test_clean_video_equals_plain_classification(model):
    pipe = make_pipeline(model)
    video = painted(CLEAN)
    (r,) = pipe.run(video)
    plain = model(video.unsqueeze(0)).softmax(-1)[0]
    assert r.label == int(plain.argmax()) == r.label_before
    assert torch.allclose(torch.tensor(r.probs), plain)


@pytest.mark.parametrize("strategy, expected", [("none", "none"), ("spatial", "spatial")])
def test_fixed_strategies_ignore_the_verdict(model, strategy, expected):
    pipe = make_pipeline(model, strategy=strategy)
    results = pipe.run(torch.stack([painted(CLEAN), painted(DENSE)]))
    assert [r.defense for r in results] == [expected, expected]


def test_minority_rule_marks_a_whole_flipped_run():
    from vidshield.detection import Detection

    det = Detection(alpha=0.0, verdict="sparse", frame_labels=[2, 2, 0, 0, 0, 2, 2, 2, 2, 2], exception_frames=[])
    assert polluted_frames(det, "exceptions") == []
    assert polluted_frames(det, "minority") == [2, 3, 4]


def test_ends_rule_adds_one_sided_exceptions_at_the_clip_ends():
    from vidshield.detection import Detection

    labels = [0, 2, 2, 1, 2, 2, 2, 2, 2, 3]  # frame 3 is an exception; frames 0 and 9 are one-sided ones
    det = Detection(alpha=0.1, verdict="sparse", frame_labels=labels, exception_frames=[3])
    assert polluted_frames(det, "exceptions") == [3]
    assert polluted_frames(det, "exceptions+ends") == [0, 3, 9]
    # an end frame whose two neighbours disagree with each other is not flagged
    det = Detection(alpha=0.2, verdict="sparse", frame_labels=[0, 2, 1, 1, 1], exception_frames=[1])
    assert polluted_frames(det, "exceptions+ends") == [1]


def test_real_temporal_defense_removes_a_small_perturbation(model):
    """A 6/255 nudge that flips one frame of a static clip is quantised away by the rebuild (at QP 36
    a flat residual survives from about 8.3/255: the DC step is 40 on the 4x-scaled coefficient)."""
    detector = TemporalConsistencyDetector(model, gamma1=0.05, gamma2=0.3)
    pipe = DefensePipeline(model, detector, temporal=TemporalDefense(qp=36), spatial=Recorder())
    clean = torch.zeros(10, 3, SIZE, SIZE)
    clean[:, 0], clean[:, 1], clean[:, 2] = 120 / 255, 124 / 255, 20 / 255  # green by a hair
    attacked = clean.clone()
    attacked[3, 0] += 6 / 255  # frame 3 now reads red
    (r,) = pipe.run(attacked)
    assert r.verdict == "sparse" and r.rebuilt_frames == [3]
    assert torch.equal(r.defended[3], clean[3])  # the perturbation did not survive
    keep = [t for t in range(10) if t != 3]
    assert torch.equal(r.defended[keep], attacked[keep])  # other frames bit-identical
    assert r.label == 1 and r.frame_labels[3] == 0


def test_bad_strategy_is_refused(model):
    with pytest.raises(ValueError, match="strategy"):
        make_pipeline(model, strategy="everything")


class Tint(Defense):
    """A 'spatial defense' that paints every frame red, so purified videos change label."""

    def forward(self, video, *, polluted=None, generator=None):
        out = torch.full_like(video, 0.1)
        out[:, :, 0] = 0.9
        return out


def test_squeeze_check_catches_a_consistent_attack(model):
    """A clean verdict whose label changes under the spatial defense is treated as dense."""
    detector = TemporalConsistencyDetector(model, gamma1=0.05, gamma2=0.3)
    videos = torch.stack([painted(CLEAN), painted([0] * 10)])  # green, and already red
    plain = DefensePipeline(model, detector, temporal=Recorder(), spatial=Tint()).run(videos)
    assert [r.defense for r in plain] == ["none", "none"]
    checked = DefensePipeline(model, detector, temporal=Recorder(), spatial=Tint(), squeeze_check=True).run(videos)
    assert [r.verdict for r in checked] == ["clean", "clean"]
    assert [r.defense for r in checked] == ["spatial", "none"]  # the red video's label did not change
    assert [r.squeezed for r in checked] == [True, False]
    assert checked[0].label == 0 and torch.equal(checked[1].defended, videos[1])


def test_vote_answers_the_frame_majority_and_flags_disagreement():
    from vidshield.detection.vote import frame_vote

    model = ColourClassifier()
    # 6 red frames (label 0) but 4 very bright blue frames: the video mean says blue, the vote red
    video = painted([0] * 6 + [2] * 4).unsqueeze(0)
    video[0, 6:, 2] = 1.0
    video[0, :6, 0] = 0.5
    plain = DefensePipeline(model, TemporalConsistencyDetector(model), temporal=Recorder(), spatial=Recorder())
    voted = DefensePipeline(
        model, TemporalConsistencyDetector(model), temporal=Recorder(), spatial=Recorder(), vote=True
    )
    (a,), (b,) = plain.run(video), voted.run(video)
    assert a.label == 2 and not a.vote_flag
    assert b.label == 0 and b.vote_flag and b.label_before == 2
    assert frame_vote(torch.tensor([[1, 1, 2, 2]]), 3, torch.tensor([[0.0, 0.2, 0.8]])).tolist() == [2]
    assert frame_vote(torch.tensor([[1, 1, 1, 2]]), 3, torch.tensor([[0.0, 0.0, 1.0]])).tolist() == [1]


def test_vote_default_comes_from_the_detector_config_then_the_model(model, tmp_path):
    from vidshield.detection import DetectorConfig

    def pipe(detector, **kw):
        return DefensePipeline(model, detector, temporal=Recorder(), spatial=Recorder(), **kw)

    assert pipe(TemporalConsistencyDetector(model)).vote is False  # no word anywhere: the paper's answer
    model.metadata = {"detector": {"vote": True}}  # the checkpoint's default (shipped synthetic-lrcn)
    assert pipe(TemporalConsistencyDetector(model)).vote is True
    assert pipe(TemporalConsistencyDetector(model, vote=False)).vote is False  # the config wins
    assert pipe(TemporalConsistencyDetector(model), vote=False).vote is False  # the argument wins
    config = DetectorConfig(vote=False)
    config.save(tmp_path / "detector.json")
    loaded = DetectorConfig.load(tmp_path / "detector.json")
    assert loaded.vote is False and DetectorConfig.from_dict({"gamma1": 0.1}).vote is None
    assert pipe(TemporalConsistencyDetector.from_config(loaded, model)).vote is False


def test_scan_file_answers_the_windows_vote(model, tmp_path):
    """With the vote, a file's label is the majority of its windows' answers (not the mean of the
    classifier's probabilities)."""
    from vidshield.io import write_video
    from vidshield.pipeline import scan_file

    # 20 frames: windows 0-9, 10-19; each window: 6 red frames and 4 very bright blue ones
    frames = torch.full((20, 3, SIZE, SIZE), 0.1)
    for start in (0, 10):
        frames[start : start + 6, 0] = 0.5
        frames[start + 6 : start + 10, 2] = 1.0
    path = write_video(tmp_path / "clip.mkv", frames, fps=25.0, lossless=True)
    plain = DefensePipeline(model, TemporalConsistencyDetector(model), temporal=Recorder(), spatial=Recorder())
    voted = DefensePipeline(
        model, TemporalConsistencyDetector(model, vote=True), temporal=Recorder(), spatial=Recorder()
    )
    a, b = scan_file(plain, path), scan_file(voted, path)
    assert a.label == 2 and [r.label for _, r in a.windows] == [2, 2]
    assert b.label == 0 and [r.label for _, r in b.windows] == [0, 0] and b.label_before == 2


def test_shipped_detection_models_carry_their_vote_default():
    from vidshield.pipeline import build_pipeline

    synthetic = build_pipeline(model="synthetic-lrcn")
    assert synthetic.vote is True and synthetic.detector.config.model == "synthetic-lrcn-robust"
    assert synthetic.classifier.metadata["detector"]["network"] == "synthetic-lrcn-robust"
    assert build_pipeline(model="ut-lrcn").vote is False
    assert build_pipeline(model="synthetic-lrcn", vote=False).vote is False
    assert build_pipeline(model="ut-lrcn", vote=True).vote is True
    # the squeeze check: off for every shipped network, on when asked
    assert synthetic.squeeze_check is False and build_pipeline(model="ut-lrcn").squeeze_check is False
    assert build_pipeline(model="synthetic-lrcn", squeeze_check=True).squeeze_check is True


def test_a_malformed_detector_section_is_a_checkpoint_error(tmp_path):
    import json

    from vidshield.errors import CheckpointError
    from vidshield.models import create_model, load_model, save_model

    path = save_model(create_model("test-lrcn", num_classes=3), tmp_path / "m", metadata={"detector": {"vote": True}})
    assert load_model(path).metadata["detector"] == {"vote": True}
    meta = tmp_path / "m.json"
    bads = (({"vote": "yes"}, "'vote' must be true/false"), ([1], "'detector' must be an object"))
    more = (({"network": 3}, "'network' must be"), ({"squeeze_check": 1}, "'squeeze_check' must be true/false"))
    for bad, message in (*bads, *more):
        meta.write_text(json.dumps({**json.loads(meta.read_text()), "detector": bad}))
        with pytest.raises(CheckpointError, match=message):
            load_model(path)


def test_fewer_torch_threads_lowers_never_raises_and_restores(monkeypatch):
    import os

    from vidshield.utils import fewer_torch_threads

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(3)
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
        with fewer_torch_threads() as inside:  # two cores: one left to the decoder
            assert inside == torch.get_num_threads() == 1
        assert torch.get_num_threads() == 3
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(16)))
        with fewer_torch_threads():  # never more than before
            assert torch.get_num_threads() == 3
        with pytest.raises(RuntimeError), fewer_torch_threads(reserved=20):
            assert torch.get_num_threads() == 1
            raise RuntimeError
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)


def test_a_models_checkpoint_can_name_its_default_detection_network(tmp_path):
    """``"detector": {"network": NAME}``: the model alone classifies while NAME (a detection network
    trained for it) detects and votes; a named classifier keeps the model as the detection network;
    a network trained for another classifier is refused."""
    from vidshield.detection.train_detector import PairingError
    from vidshield.models import create_model, save_model
    from vidshield.models.adapter import classifier_hash
    from vidshield.pipeline import build_pipeline

    comdefend = _tiny_comdefend(tmp_path)
    torch.manual_seed(0)
    clf = create_model("test-lrcn", num_classes=3)
    robust_path = tmp_path / "robust"
    torch.manual_seed(1)
    robust = create_model("test-lrcn", num_classes=3)
    serves = {"ref": str(tmp_path / "clf"), "sha256": classifier_hash(clf)}
    save_model(robust, robust_path, metadata={"serves": serves, "detector": {"vote": True, "squeeze_check": True}})
    clf_path = save_model(clf, tmp_path / "clf", metadata={"detector": {"network": str(robust_path)}})

    pipe = build_pipeline(model=str(clf_path), comdefend=comdefend)
    assert torch.equal(pipe.classifier.state_dict()["classifier.weight"], clf.state_dict()["classifier.weight"])
    assert torch.equal(pipe.detector.model.state_dict()["classifier.weight"], robust.state_dict()["classifier.weight"])
    assert pipe.vote is True and pipe.detector.config.model == str(robust_path)
    assert pipe.squeeze_check is True  # the network's JSON turns the squeeze check on
    assert build_pipeline(model=str(clf_path), comdefend=comdefend, vote=False).vote is False
    assert build_pipeline(model=str(clf_path), comdefend=comdefend, squeeze_check=False).squeeze_check is False
    own = build_pipeline(model=str(clf_path), classifier=str(clf_path), comdefend=comdefend)
    assert torch.equal(own.detector.model.state_dict()["classifier.weight"], clf.state_dict()["classifier.weight"])

    torch.manual_seed(2)
    other = save_model(
        create_model("test-lrcn", num_classes=3),
        tmp_path / "other",
        metadata={"detector": {"network": str(robust_path)}},
    )
    with pytest.raises(PairingError, match="trained for classifier"):
        build_pipeline(model=str(other), comdefend=comdefend)


def _tiny_comdefend(tmp_path):
    from vidshield.checkpoint import save_checkpoint
    from vidshield.defenses.spatial.comdefend import ARCHITECTURE, ComDefend

    return str(save_checkpoint(tmp_path / "comdefend", ComDefend().state_dict(), {"architecture": ARCHITECTURE}))

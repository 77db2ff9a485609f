import json

import pytest
import torch
from tests.detection.fakes import MeanColourClassifier, NoFramePath, video_from_labels

from vidshield.detection import DetectorConfig, TemporalConsistencyDetector
from vidshield.errors import VidshieldError

CLEAN = [0] * 8  # alpha 0
SPARSE = [0, 0, 1, 0, 0, 2, 0, 0]  # 2 exceptions -> alpha 0.25
DENSE = [0, 1, 0, 1, 0, 1, 0, 1]  # 6 exceptions -> alpha 0.75


def test_verdicts_from_controlled_labels(colour_model):
    det = TemporalConsistencyDetector(colour_model)
    video = torch.stack([video_from_labels(x) for x in (CLEAN, SPARSE, DENSE)])
    out = det.detect(video)
    assert [d.verdict for d in out] == ["clean", "sparse", "dense"]
    assert [d.alpha for d in out] == [0.0, 0.25, 0.75]
    assert out[1].frame_labels == tuple(SPARSE)
    assert out[1].exception_frames == (2, 5)
    assert out[2].exception_frames == tuple(range(1, 7))
    assert set(out[0].scores) >= {"alpha", "flip_rate", "js_divergence"} and out[0].score == 0.0


def test_single_clip_and_batch_agree(colour_model):
    det = TemporalConsistencyDetector(colour_model, batch_size=2)
    video = torch.stack([video_from_labels(x) for x in (CLEAN, SPARSE, DENSE)])
    batched = det.detect(video)
    assert [det.detect(v)[0] for v in video] == batched


def test_thresholds_and_score_change_routing(colour_model):
    video = video_from_labels(SPARSE)
    assert TemporalConsistencyDetector(colour_model, gamma1=0.3, gamma2=0.5).detect(video)[0].verdict == "clean"
    assert TemporalConsistencyDetector(colour_model, gamma1=0.1, gamma2=0.2).detect(video)[0].verdict == "dense"
    # flip_rate of SPARSE = 4 / 7 changes
    d = TemporalConsistencyDetector(colour_model, score="flip_rate", gamma1=0.6, gamma2=0.7).detect(video)[0]
    assert d.score_name == "flip_rate" and d.score == pytest.approx(4 / 7) and d.verdict == "clean"
    assert d.alpha == 0.25


def test_detect_with_logits_uses_one_pass(colour_model):
    det = TemporalConsistencyDetector(colour_model)
    video = torch.stack([video_from_labels(SPARSE), video_from_labels(CLEAN)])
    colour_model.frame_passes = 0
    dets, logits = det.detect_with_logits(video)
    assert colour_model.frame_passes == 1
    assert torch.allclose(logits, colour_model(video))
    assert [d.verdict for d in dets] == ["sparse", "clean"]


def test_input_not_mutated_and_model_mode_restored(colour_model):
    video = video_from_labels(DENSE)
    before = video.clone()
    colour_model.train()
    TemporalConsistencyDetector(colour_model).detect(video)
    assert torch.equal(video, before) and colour_model.training


def test_model_without_frame_path_is_rejected():
    with pytest.raises(ValueError, match="per-frame path"):
        TemporalConsistencyDetector(NoFramePath())


def test_bad_videos(colour_model):
    det = TemporalConsistencyDetector(colour_model)
    with pytest.raises(ValueError, match="at least 3 frames"):
        det.detect(video_from_labels([0, 1]))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        det.detect(video_from_labels(CLEAN) * 3)


def test_config_round_trip(tmp_path, colour_model):
    cfg = DetectorConfig(
        gamma1=0.15,
        gamma2=0.325,
        score="js_divergence",
        model="test-lrcn",
        calibration={"f1": [0.9, 0.8], "data": "synthetic"},
    )
    path = cfg.save(tmp_path / "detector.json")
    assert DetectorConfig.load(path) == cfg
    assert json.loads(path.read_text())["gamma2"] == 0.325
    det = TemporalConsistencyDetector.from_config(path, colour_model)
    assert (det.gamma1, det.gamma2, det.score, det.config) == (0.15, 0.325, "js_divergence", cfg)


def test_config_errors(tmp_path):
    with pytest.raises(VidshieldError, match="not found"):
        DetectorConfig.load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(VidshieldError, match="not valid JSON"):
        DetectorConfig.load(tmp_path / "bad.json")
    (tmp_path / "inv.json").write_text(json.dumps({"gamma1": 0.5, "gamma2": 0.1}))
    with pytest.raises(VidshieldError, match="gamma1 must not exceed gamma2"):
        DetectorConfig.load(tmp_path / "inv.json")
    with pytest.raises(ValueError, match="unknown consistency score"):
        DetectorConfig(score="nope")


def _chunks(video, size, overlap=0):
    start = 0
    while start < video.shape[0]:
        yield start, video[start : start + size]
        start += size - overlap


@pytest.mark.parametrize("chunk, overlap", [(5, 0), (7, 2), (64, 0)])
def test_detect_stream_windows_cover_the_video(chunk, overlap):
    model = MeanColourClassifier(frames=8)
    labels = [0] * 10 + [0, 1, 0, 0, 2, 0] + [0] * 5  # 21 frames, exceptions at 11 and 14
    video = video_from_labels(labels)
    det = TemporalConsistencyDetector(model)
    windows = det.detect_stream(_chunks(video, chunk, overlap))  # window 8, stride 4
    assert [w.start for w in windows] == [0, 4, 8, 12, 13]  # last one aligned to the end
    assert all(w.num_frames == 8 for w in windows)
    for w in windows:  # every window equals detect() on the same frames
        assert w == det.detections_from_logits(det.frame_logits(video[w.start : w.start + 8]), start=w.start)[0]
    summary = det.summarize(windows)
    assert summary.frame_labels == tuple(labels)
    assert summary.exception_frames == (11, 14)
    assert summary.alpha == max(w.alpha for w in windows) == 2 / 8
    assert summary.verdict == "sparse"


def test_detect_stream_short_video_and_errors():
    det = TemporalConsistencyDetector(MeanColourClassifier(frames=8))
    video = video_from_labels([0, 1, 0, 0, 0])
    (w,) = det.detect_stream(_chunks(video, 2))
    assert (w.start, w.num_frames, w.alpha) == (0, 5, 0.2)
    with pytest.raises(ValueError, match="at least 3 frames"):
        det.detect_stream(_chunks(video[:2], 2))
    with pytest.raises(ValueError, match="gap"):
        det.detect_stream(iter([(0, video[:2]), (3, video[3:])]))
    with pytest.raises(ValueError, match="window"):
        det.detect_stream(_chunks(video, 2), window=2)
    with pytest.raises(ValueError, match="stride"):
        det.detect_stream(_chunks(video, 2), window=4, stride=5)


def test_feature_spike_is_read_from_the_lrcns_own_features_in_one_pass_and_in_streams():
    from vidshield.detection.scores import FEATURE_SCORES
    from vidshield.models import create_model

    torch.manual_seed(0)
    model = create_model("test-lrcn", num_classes=4).eval()
    video = torch.rand(21, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    det = TemporalConsistencyDetector(model, score="feature_spike", gamma1=1e9, gamma2=2e9)
    with torch.no_grad():
        features = model.frame_features(video[None, :8])
    d = det.detect(video[:8])[0]
    assert d.score_name == "feature_spike" and d.score == float(FEATURE_SCORES["feature_spike"](features)[0])
    plain = TemporalConsistencyDetector(model).detect(video[:8])[0]  # the same scores, routed on alpha
    assert d.scores == plain.scores and plain.score_name == "alpha"
    with pytest.raises(ValueError, match="frame features"):
        det.detections_from_logits(det.frame_logits(video[:8]))
    windows = det.detect_stream(_chunks(video, 5), window=8, stride=4)
    assert [w.start for w in windows] == [0, 4, 8, 12, 13]
    for w in windows:  # the stream gives what detect() gives on the same frames
        one = det.detect(video[w.start : w.start + 8])[0]
        assert w.scores == pytest.approx(one.scores, rel=1e-6, abs=1e-9) and w.frame_labels == one.frame_labels
    with pytest.raises(ValueError, match="per-frame features"):
        TemporalConsistencyDetector(MeanColourClassifier(frames=8), score="feature_spike")


def test_observe_sees_the_features_feature_spike_reads_from_the_same_cnn_pass(monkeypatch):
    """``observe`` (the in-domain check of ``scan``) gets each batch's frame logits and CNN
    features from the pass that scores feature_spike: one ``frame_features`` call per batch."""
    from vidshield.detection.scores import FEATURE_SCORES
    from vidshield.models import create_model

    torch.manual_seed(0)
    model = create_model("test-lrcn", num_classes=4).eval()
    video = torch.rand(2, 8, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    det = TemporalConsistencyDetector(model, score="feature_spike", gamma1=1e9, gamma2=2e9, batch_size=1)
    cnn, calls, seen = model.frame_features, [], []
    monkeypatch.setattr(model, "frame_features", lambda v: calls.append(v.shape[0]) or cnn(v))
    detections, _ = det.detect_with_logits(video, observe=lambda f, e: seen.append((f, e)))
    assert calls == [1, 1]
    with torch.no_grad():
        features = torch.cat([cnn(video[i : i + 1]) for i in range(2)])
        logits = torch.cat([model._zero_state_logits(features[i : i + 1]) for i in range(2)])
    assert torch.equal(torch.cat([e for _, e in seen]), features)
    assert torch.equal(torch.cat([f for f, _ in seen]), logits)
    assert [d.score for d in detections] == FEATURE_SCORES["feature_spike"](features).tolist()
    with pytest.raises(ValueError, match="observe"):
        TemporalConsistencyDetector(MeanColourClassifier(frames=8)).detect(video, observe=lambda f, e: None)

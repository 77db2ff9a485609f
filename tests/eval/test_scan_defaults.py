"""The honest defaults: `scan` without --model uses ut-lrcn with its shipped config; the in-domain
check in `scan`'s report; a clean real-like clip is not called attacked by the default."""

from __future__ import annotations

import json

import pytest
import torch
from tests.conftest import make_moving_video

from vidshield.cli import main
from vidshield.detection import DetectorConfig
from vidshield.detection.domain import file_embeddings, fit_domain
from vidshield.io import write_video


def _profile_for(model_path, files):
    from vidshield.models import load_model

    model = load_model(model_path)
    return fit_domain([file_embeddings(model, f) for f in files], embedding="frame_features")


def test_scan_reports_out_of_domain_with_one_warning_line_and_defends_nothing(tiny_models, tmp_path, capsys):
    """A tiny LRCN's profile fitted on ten smooth moving textures: one of them whose statistics lie
    inside the ranges is in domain; uniform noise (far from them in feature space) is out, with a
    warning line instead of the verdict and no defense."""
    from vidshield.models import load_model

    files = [write_video(tmp_path / f"cal{s}.mkv", make_moving_video(20, 32, 32, seed=s), fps=25.0) for s in range(10)]
    profile = _profile_for(tiny_models["lrcn"], files)
    model = load_model(tiny_models["lrcn"])
    inside = [f for f in files if profile.check(profile.statistics(*file_embeddings(model, f)))[0]]
    assert 0 < len(inside) < len(files)  # the extremes fall outside [q0.5 %, q99.5 %]
    same = inside[0]
    config = DetectorConfig(model=tiny_models["lrcn"], target_fpr=0.01, domain=profile.to_dict()).save(
        tmp_path / "d.json"
    )
    noise = write_video(tmp_path / "noise.mkv", torch.rand(20, 3, 32, 32, generator=torch.Generator().manual_seed(0)))
    common = ["--model", tiny_models["lrcn"], "--comdefend", tiny_models["comdefend"], "--config", str(config)]
    for path, expected in ((same, True), (noise, False)):
        report = tmp_path / f"{path.stem}.json"
        assert main(["scan", str(path), *common, "--report", str(report), "--plot", str(tmp_path / "p.png")]) == 0
        out = capsys.readouterr().out.splitlines()
        saved = json.loads(report.read_text())
        assert saved["in_domain"] is expected and saved["config"] == str(config)
        assert set(saved["domain"]["statistics"]) == {"confidence", "distance", "motion"}
        warnings = [line for line in out if "out of domain" in line]
        if expected:
            assert not warnings and out[0].startswith(f"{path}: {saved['verdict'].upper()} (")
        else:
            assert len(warnings) == 1 and out[0] == warnings[0] and "distance" in out[0]
            assert {w["defense"] for w in saved["windows"]} == {"none"}
        assert any(line.startswith("  classifier: ") and "label space" in line for line in out)


def test_scan_without_a_profile_says_in_domain_unknown(tiny_models, tmp_path):
    clip = write_video(tmp_path / "c.mkv", make_moving_video(20, 32, 32), fps=25.0)
    report = tmp_path / "r.json"
    argv = ["scan", str(clip), "--model", tiny_models["lrcn"], "--comdefend", tiny_models["comdefend"]]
    assert main([*argv, "--report", str(report), "--plot", str(tmp_path / "p.png")]) == 0
    saved = json.loads(report.read_text())
    assert saved["in_domain"] is None and saved["domain"] is None and saved["config"] is None


def test_the_default_detector_is_ut_lrcn_with_its_shipped_config(tmp_path, monkeypatch):
    from vidshield.cli.options import model_option
    from vidshield.detection import load_detector
    from vidshield.detection.detector import DEFAULT_MODEL, shipped_config
    from vidshield.models.checkpoints import zoo_dir
    from vidshield.pipeline import build_pipeline

    assert DEFAULT_MODEL == "ut-lrcn"
    assert model_option(lambda **kw: None).__click_params__[0].default == "ut-lrcn"
    shipped = DetectorConfig.load(zoo_dir() / "ut-lrcn.detector.json")
    assert shipped.target_fpr == 0.01 and shipped.domain_profile() is not None and shipped.model == "ut-lrcn"
    assert shipped_config("ut-lrcn") == zoo_dir() / "ut-lrcn.detector.json"
    assert shipped_config("synthetic-lrcn") is None  # no config shipped: the paper's thresholds
    pipe = build_pipeline()
    assert pipe.detector.model.class_names == ["handshake", "hug", "kick", "point", "punch", "push"]
    assert pipe.detector.config.to_dict() == shipped.to_dict()
    assert load_detector().config.to_dict() == shipped.to_dict()
    # an explicit config wins over the shipped one; so does a local file of the model's name
    paper = load_detector("ut-lrcn", DetectorConfig())
    assert (paper.gamma1, paper.gamma2, paper.config.target_fpr) == (0.175, 0.3, None)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ut-lrcn.json").write_text("{}")
    assert shipped_config("ut-lrcn") is None


def test_a_clean_panning_clip_is_not_called_attacked_by_the_default(tmp_path):
    """A smooth texture panning 1 px per frame (96 x 128, 48 frames) is clean for the default."""
    torch.set_num_threads(1)
    clip = write_video(tmp_path / "pan.mkv", make_moving_video(48, 96, 128, dy=0, dx=1, seed=1), fps=25.0)
    report = tmp_path / "r.json"
    assert main(["scan", str(clip), "--device", "cpu", "--report", str(report), "--plot", str(tmp_path / "p.png")]) == 0
    saved = json.loads(report.read_text())
    assert (
        saved["model"] == "ut-lrcn"
        and saved["target_fpr"] == 0.01
        and saved["config"].endswith("ut-lrcn.detector.json")
    )
    assert saved["detector_verdict"] == "clean" and saved["windows_fired"] <= saved["windows_allowed"]
    assert saved["label_space"][0] == "handshake" and isinstance(saved["in_domain"], bool)
    assert saved["verdict"] == ("clean" if saved["in_domain"] else "out_of_domain")


def test_a_held_out_street_clip_is_not_called_attacked(media_dir, tmp_path, capsys):
    """bikes.mp4 (a street, 640 x 272) was held out of the calibration."""
    bikes = media_dir / "bikes.mp4"
    if not bikes.is_file():
        pytest.skip("shared media not available")
    torch.set_num_threads(1)
    report = tmp_path / "r.json"
    assert (
        main(["scan", str(bikes), "--device", "cpu", "--report", str(report), "--plot", str(tmp_path / "p.png")]) == 0
    )
    saved = json.loads(report.read_text())
    # the detector alone flags it (js_divergence rises with the camera's motion), but the street is
    # out of the calibrated domain: a warning instead of a verdict, nothing defended
    assert saved["in_domain"] is False and {w["defense"] for w in saved["windows"]} == {"none"}
    assert "out of domain" in capsys.readouterr().out.splitlines()[0]


def test_the_scan_checks_the_domain_on_its_own_detection_pass(tiny_models, tmp_path, monkeypatch):
    """With a false-alarm budget and windows at the detector's view, ``scan_file(check_domain=True)``
    makes the in-domain check on its first detection pass: the video is not decoded for it
    separately (``domain_check`` is not called), the statistics equal ``check_file``'s exactly
    (lengths that are no multiple of the window: the last window's overlap counts once), and
    windows, verdict and defended frames equal the separate check followed by a scan that defends
    nothing out of domain. Every window is called dense (gamma1 = gamma2 = 0), so in domain the
    second pass defends (the spatial defense)."""
    import copy

    import vidshield.pipeline
    from vidshield.detection.domain import check_file
    from vidshield.pipeline import build_pipeline, scan_file

    files = [
        write_video(tmp_path / f"cal{s}.mkv", make_moving_video(20 + 5 * s, 32, 32, seed=s), fps=25.0) for s in range(8)
    ]
    profile = _profile_for(tiny_models["lrcn"], files)
    noise = write_video(tmp_path / "noise.mkv", torch.rand(37, 3, 32, 32, generator=torch.Generator().manual_seed(0)))
    config = DetectorConfig(gamma1=0.0, gamma2=0.0, target_fpr=0.01, domain=profile.to_dict())
    pipe = build_pipeline(
        model=tiny_models["lrcn"], comdefend=tiny_models["comdefend"], config=config.save(tmp_path / "d.json")
    )
    expected = {f: check_file(profile, pipe.detector.model, f) for f in [*files, noise]}
    assert {e["in_domain"] for e in expected.values()} == {True, False}

    def no_second_decode(*_):
        raise AssertionError("domain_check decoded the video again")

    def summary(result):
        return [(s, {k: v for k, v in r.to_dict().items() if k != "seconds"}) for s, r in result.windows]

    for f, want in expected.items():
        reference = copy.copy(pipe)
        if not want["in_domain"]:
            reference.strategy = "none"
        frames_ref: list = []
        ref = scan_file(reference, f, on_defended=frames_ref.append)
        with monkeypatch.context() as m:
            m.setattr(vidshield.pipeline, "domain_check", no_second_decode)
            frames: list = []
            got = scan_file(pipe, f, check_domain=True, on_defended=frames.append)
        assert got.domain == want and ref.domain is None
        assert (got.verdict, got.label, got.probs) == (ref.verdict, ref.label, ref.probs)
        assert summary(got) == summary(ref)
        assert len(frames) == len(frames_ref) and all(torch.equal(a, b) for a, b in zip(frames, frames_ref))
        if want["in_domain"]:
            assert {r.defense for _, r in got.windows} != {"none"}  # the second pass defended


def test_domain_check_fed_in_pieces_equals_the_whole_video(tiny_models, tmp_path):
    from vidshield.detection.domain import DomainCheck, check_file
    from vidshield.models import load_model

    files = [write_video(tmp_path / f"c{s}.mkv", make_moving_video(24, 32, 32, seed=s), fps=25.0) for s in range(3)]
    profile = _profile_for(tiny_models["lrcn"], files)
    model = load_model(tiny_models["lrcn"]).eval()
    clip = torch.rand(1, 29, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    path = write_video(tmp_path / "n.mkv", clip[0])
    from vidshield.io import read_video

    video = read_video(path)[None]
    with torch.no_grad():
        _, logits, features = model.frame_outputs(video)
    check = DomainCheck(profile)
    for a, b in ((0, 3), (3, 17), (17, 29)):
        check.add(logits[0, a:b], features[0, a:b])
    assert check.result() == check_file(profile, model, path)

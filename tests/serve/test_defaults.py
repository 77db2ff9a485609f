"""The service's defaults are `scan`'s: ut-lrcn with its shipped detector config, and every report
carries the in-domain check and the classifier / label-space line that `scan` prints."""

from __future__ import annotations

import json

import torch
from tests.conftest import make_moving_video
from tests.serve.helpers import wait_for, write_clip
from tests.serve.test_jobs import post, without_timings

from vidshield.cli import main
from vidshield.detection import DetectorConfig
from vidshield.detection.detector import DEFAULT_MODEL, shipped_config
from vidshield.io import write_video
from vidshield.pipeline import label_space_line
from vidshield.serve import ScanSettings


def _scan_json(capsys, tmp_path, video, *args):
    argv = [
        "scan",
        str(video),
        *args,
        "--json",
        "--report",
        str(tmp_path / "r.json"),
        "--plot",
        str(tmp_path / "p.png"),
    ]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    del out["report"], out["plot"]
    return out


def test_the_service_defaults_to_the_model_and_config_scan_uses(make_client, tiny_models, tmp_path, capsys):
    from vidshield.cli.serve import command as serve_command

    assert DEFAULT_MODEL == "ut-lrcn" and ScanSettings().models == {"ut-lrcn": "ut-lrcn"}
    assert next(p for p in serve_command.params if p.name == "models").default == ("ut-lrcn",)
    shipped = DetectorConfig.load(shipped_config("ut-lrcn"))

    client = make_client(workers=1, settings=ScanSettings(comdefend=tiny_models["comdefend"]))
    assert client.get("/v1/options").json()["models"] == ["ut-lrcn"]
    clip = write_clip(tmp_path / "clip.mkv")
    job = wait_for(client.get, post(client, clip))
    assert job["state"] == "done", job["error"]
    report = job["report"]
    names = ["handshake", "hug", "kick", "point", "punch", "push"]
    assert (report["model"], report["classifier"], report["label_space"]) == ("ut-lrcn", "ut-lrcn", names)
    assert report["config"] == "ut-lrcn.detector.json"  # the shipped config, named without its path
    assert (report["gamma1"], report["gamma2"], report["target_fpr"]) == (
        shipped.gamma1,
        shipped.gamma2,
        shipped.target_fpr,
    )
    assert isinstance(report["in_domain"], bool) and set(report["domain"]["statistics"]) == {
        "confidence",
        "distance",
        "motion",
    }
    assert report["about"] == label_space_line("ut-lrcn", names)
    assert report["about"].startswith("classifier: ut-lrcn (6 classes: handshake, hug, kick, point, punch ...)")

    # the same file through `scan` with no --model and no --config: the same report
    cli = _scan_json(capsys, tmp_path, clip, "--comdefend", tiny_models["comdefend"])
    assert cli.pop("video") == str(clip) and report.pop("video") == "clip.mkv"
    assert cli.pop("config") == str(shipped_config("ut-lrcn")) and report.pop("config") == "ut-lrcn.detector.json"
    assert without_timings(report) == without_timings(cli)


def test_out_of_domain_jobs_carry_scans_warning_and_are_not_defended(make_client, tiny_models, tmp_path, capsys):
    """A tiny LRCN's profile fitted on smooth moving textures (as in tests/eval/test_scan_defaults.py):
    a texture inside its ranges is in domain, uniform noise is not; the service says so as `scan`
    does and defends nothing out of domain."""
    from vidshield.detection.domain import file_embeddings, fit_domain
    from vidshield.models import load_model

    model = load_model(tiny_models["lrcn"])
    files = [write_video(tmp_path / f"cal{s}.mkv", make_moving_video(20, 32, 32, seed=s), fps=25.0) for s in range(10)]
    profile = fit_domain([file_embeddings(model, f) for f in files], embedding="frame_features")
    inside = next(f for f in files if profile.check(profile.statistics(*file_embeddings(model, f)))[0])
    config = DetectorConfig(model=tiny_models["lrcn"], target_fpr=0.01, domain=profile.to_dict()).save(
        tmp_path / "d.json"
    )
    noise = write_video(tmp_path / "noise.mkv", torch.rand(20, 3, 32, 32, generator=torch.Generator().manual_seed(0)))
    settings = ScanSettings(
        models={"tiny": tiny_models["lrcn"]}, configs={"cal": str(config)}, comdefend=tiny_models["comdefend"]
    )
    client = make_client(workers=1, settings=settings)
    for video, expected in ((inside, True), (noise, False)):
        job = wait_for(client.get, post(client, video, config="cal"))
        assert job["state"] == "done", job["error"]
        report = job["report"]
        assert report["in_domain"] is expected and report["config"] == "cal"
        if expected:
            assert report["domain_warning"] is None
        else:
            assert (
                report["domain_warning"].startswith("out of domain for tiny (")
                and "distance " in report["domain_warning"]
            )
            assert report["domain_warning"].endswith("): no verdict, nothing defended")
            assert {w["defense"] for w in report["windows"]} == {"none"}
            # no verdict: a client reading `verdict` is not told "attacked" for a video out of domain
            assert report["verdict"] == "out_of_domain" and report["detector_verdict"] in ("clean", "sparse", "dense")
        if expected:
            assert report["verdict"] == report["detector_verdict"]
        assert report["about"] == label_space_line("tiny", model.class_names)
        cli = _scan_json(
            capsys,
            tmp_path,
            video,
            "--model",
            tiny_models["lrcn"],
            "--comdefend",
            tiny_models["comdefend"],
            "--config",
            str(config),
        )
        for key, value in (("video", video.name), ("config", "cal")):
            assert report.pop(key) == value
            cli.pop(key)
        assert (report.pop("model"), report.pop("classifier")) == ("tiny", "tiny")
        assert (cli.pop("model"), cli.pop("classifier")) == (tiny_models["lrcn"],) * 2
        assert cli.pop("domain_warning") == (
            None
            if expected
            else f"out of domain for {tiny_models['lrcn']}" + report["domain_warning"][len("out of domain for tiny") :]
        )
        report.pop("domain_warning")
        assert cli.pop("about").replace(tiny_models["lrcn"], "tiny") == report.pop("about")
        assert without_timings(report) == without_timings(cli)

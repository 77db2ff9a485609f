"""The security harness judges every attack by the real pipeline and resumes from its JSON."""

import json

import pytest
import torch

from vidshield.attacks.adaptive import is_detected
from vidshield.data.synthetic import SyntheticActions
from vidshield.defenses.spatial import MedianDefense
from vidshield.eval.security import (
    PIPELINES,
    SWEEP_THREATS,
    THREATS,
    configured_pipeline,
    judge,
    plot_sweep,
    run_cases,
    summary_table,
    sweep_table,
    worst_case,
)
from vidshield.models import create_model


def _setup():
    torch.manual_seed(0)
    model = create_model("test-lrcn", num_classes=3, input_size=(8, 32, 32)).eval()
    ds = SyntheticActions(4, num_classes=3, frames=8, height=32, width=32, seed=3)
    x = torch.round(torch.stack([ds[i][0] for i in range(4)]) * 255) / 255
    return model, x, torch.tensor(ds.labels, dtype=torch.int64)


@pytest.fixture
def median_spatial(monkeypatch):
    """run_cases builds its pipelines with a median filter as the spatial defense (no ComDefend)."""
    import vidshield.eval.security as sec

    monkeypatch.setattr(
        sec,
        "configured_pipeline",
        lambda m, name, networks=None, spatial=None: configured_pipeline(
            m, name, networks=networks, spatial=MedianDefense()
        ),
    )


def test_judge_is_the_pipeline_run():
    model, x, y = _setup()
    pipe = configured_pipeline(model, "paper", spatial=MedianDefense())
    got = judge(pipe, x, y)
    results = pipe.run(x)
    assert got["correct"] == [r.label == int(t) for r, t in zip(results, y)]
    assert got["detected"] == [is_detected(r) for r in results]
    assert got["accuracy"] == sum(got["correct"]) / 4


def test_run_cases_records_budget_and_resumes(tmp_path, monkeypatch, median_spatial):
    model, x, y = _setup()
    out = tmp_path / "sec.json"
    cases = [("none", "sparse", "pgd"), ("paper", "sparse", "transfer")]
    res = run_cases(model, x, y, cases, out, steps=3, restarts=1, log=lambda s: None)
    case = res["cases"]["none/sparse/pgd"]
    assert case["linf_255"] <= THREATS["sparse"].eps_255 + 1e-3
    assert case["max_frames_changed"] <= 4
    assert set(res["cases"]) == {"clean/none", "clean/paper", "none/sparse/pgd", "paper/sparse/transfer"}
    before = json.loads(out.read_text())
    calls = []
    monkeypatch.setattr("vidshield.eval.security.judge", lambda *a: calls.append(a))
    again = run_cases(model, x, y, cases, out, steps=3, restarts=1, log=lambda s: None)
    assert calls == [] and again["cases"] == before["cases"]
    w = worst_case(again, "paper", "sparse")
    assert w["accuracy"] == again["cases"]["paper/sparse/transfer"]["accuracy"]
    assert "4 frames, 16/255" in summary_table(again, ["none", "paper"], ["sparse"])


def test_every_configuration_sets_the_vote_explicitly_and_resume_refuses_bad_json(tmp_path):
    from vidshield.errors import InputFormatError

    model, x, y = _setup()
    model.metadata = {"detector": {"vote": True}}  # as the shipped synthetic-lrcn says
    networks = {"robust": create_model("test-lrcn", num_classes=3, input_size=(8, 32, 32)).eval()}
    model.metadata["detector"]["squeeze_check"] = True
    networks["robust"].metadata = {"detector": {"vote": True, "squeeze_check": True}}
    for name, settings in PIPELINES.items():
        assert "vote" in settings and "squeeze_check" in settings
        pipe = configured_pipeline(model, name, networks=networks, spatial=MedianDefense())
        assert pipe.vote is settings["vote"] and pipe.squeeze_check is settings["squeeze_check"]
        assert pipe.detector.model is (networks["robust"] if settings.get("network") == "robust" else model)
    with pytest.raises(ValueError, match="needs the detection network 'robust'"):
        configured_pipeline(model, "vote-robust", spatial=MedianDefense())
    out = tmp_path / "sec.json"
    out.write_text('{"cases": [1, 2]}')
    with pytest.raises(InputFormatError, match="'cases' must be an object"):
        run_cases(model, x, y, [], out, steps=1, restarts=1, log=lambda s: None)


def test_a_separate_detection_network_is_what_the_vote_attack_differentiates():
    """With a detection network other than the classifier (the robust one), the pipeline votes with
    its per-frame labels, and PipelineAttack's objective is that network's: the gradient of the
    decision flows into it (none into the classifier), and equals the gradient through it."""
    from vidshield.attacks.adaptive import PipelineAttack, margin_loss

    model, x, y = _setup()
    torch.manual_seed(5)
    robust = create_model("test-lrcn", num_classes=3, input_size=(8, 32, 32)).eval()
    pipe = configured_pipeline(model, "vote-robust", networks={"robust": robust}, spatial=MedianDefense())
    attack = PipelineAttack(model, pipeline=pipe, eps=8 / 255, num_frames=None, layout="all", steps=2, restarts=1)
    assert attack.pipeline.detector.model is robust
    a = x.clone().requires_grad_(True)
    margin_loss(attack.decision_logits(a), y).sum().backward()
    assert all(p.grad is None for p in model.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in robust.parameters())
    b = x.clone().requires_grad_(True)
    own = robust.frame_logits(b).softmax(-1).mean(1).clamp_min(1e-12).log()
    (expected,) = torch.autograd.grad(margin_loss(own, y).sum(), b)
    assert torch.allclose(a.grad, expected, atol=1e-6) and a.grad.abs().sum() > 0
    # the attack's hard decision is the pipeline's answer (the robust network's vote)
    assert attack.hard_decision(x).tolist() == [r.label for r in pipe.run(x)]
    votes = robust.frame_logits(x).argmax(-1)
    mine = model.frame_logits(x).argmax(-1)
    assert not torch.equal(votes, mine)  # the two networks vote differently on these clips


def test_the_sweep_covers_every_budget_and_each_process_command_is_kept(tmp_path, median_spatial):
    assert len(SWEEP_THREATS) == 20 and len(set(SWEEP_THREATS)) == 20
    assert {(THREATS[t].eps_255, THREATS[t].frames) for t in SWEEP_THREATS} == {
        (e, f) for e in (2, 4, 8, 16) for f in (1, 2, 4, 8, None)
    }
    model, x, y = _setup()
    out = tmp_path / "sweep.json"
    first = [("none", "eps2-f1", "pgd"), ("none", "eps16-f1", "pgd")]
    run_cases(model, x, y, first, out, steps=2, restarts=1, meta={"command": "a"}, log=lambda s: None)
    res = run_cases(
        model, x, y, [("none", "eps16-all", "pgd")], out, steps=2, restarts=1, meta={"command": "b"}, log=lambda s: None
    )
    assert res["meta"]["commands"] == ["a", "b"] and res["meta"]["command"] == "b"
    assert plot_sweep(res, ["none"], tmp_path / "sweep.png").stat().st_size > 0
    table = sweep_table(res, ["none", "paper"]).splitlines()
    acc = {t: f"{100 * res['cases'][f'none/{t}/pgd']['accuracy']:.1f} %" for t in ("eps2-f1", "eps16-f1", "eps16-all")}
    assert table[2].startswith("| every frame | none |  |  |  | " + acc["eps16-all"])  # only 16/255 ran
    assert table[3].startswith(f"| 1 | none | {acc['eps2-f1']}") and acc["eps16-f1"] in table[3]
    assert len(table) == 4  # no row for a pipeline or frame count that did not run
    assert plot_sweep(res, ["paper"], tmp_path / "none.png") is None  # no sweep case of that pipeline
    # a budget of 16/255 on one frame changes at most that frame, by at most 16/255
    assert res["cases"]["none/eps16-f1/pgd"]["max_frames_changed"] <= 1
    assert res["cases"]["none/eps16-f1/pgd"]["linf_255"] <= 16 + 1e-3


def test_a_randomised_temporal_defense_is_attacked_with_eot_and_the_budget_kept(tmp_path, median_spatial):
    from vidshield.eval.security import ATTACK_KINDS, EOT_SAMPLES, RANDOM_TEMPORAL

    model, x, y = _setup()
    pipe = configured_pipeline(model, "paper-random", spatial=MedianDefense())
    assert pipe.temporal.randomised and pipe.temporal.qp_range == RANDOM_TEMPORAL["qp_range"]
    assert not configured_pipeline(model, "paper", spatial=MedianDefense()).temporal.randomised
    attack = ATTACK_KINDS["pgd"](model, pipe, THREATS["sparse"], 3, 1)
    assert attack.eot == EOT_SAMPLES
    assert ATTACK_KINDS["pgd"](model, configured_pipeline(model, "paper"), THREATS["sparse"], 3, 1).eot == 1
    res = run_cases(model, x, y, [("paper-random", "sparse", "adaptive-run")], tmp_path / "r.json", steps=2, restarts=1)
    case = res["cases"]["paper-random/sparse/adaptive-run"]
    assert case["linf_255"] <= 16 + 1e-3 and case["max_frames_changed"] <= 4

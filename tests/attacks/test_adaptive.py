"""Adaptive attacks: they fool an undefended tiny model, keep their budget exactly, evade a detector
they are told about, and the pipeline attack is judged by the real pipeline."""

import pytest
import torch

from vidshield.attacks.adaptive import (
    ADAPTIVE_ATTACKS,
    DetectorAwarePGD,
    EvasiveDenseAttack,
    PipelineAttack,
    SPSAAttack,
    attack_frames,
    detector_penalty,
    is_detected,
    margin_loss,
    quantize_within,
    soft_exception_index,
)
from vidshield.defenses.spatial import MedianDefense
from vidshield.defenses.temporal import TemporalDefense
from vidshield.detection import TemporalConsistencyDetector, exception_index
from vidshield.pipeline import DefensePipeline

EPS = 16 / 255


def _pipeline(model, strategy="none", **kw):
    return DefensePipeline(
        model,
        TemporalConsistencyDetector(model),
        temporal=TemporalDefense(),
        spatial=MedianDefense(kernel=3),
        strategy=strategy,
        **kw,
    )


def _check_budget(adv, clean, eps, frames):
    diff = (adv - clean).abs()
    assert float(diff.max()) <= eps + 1e-6
    outside = torch.ones(clean.shape[1], dtype=torch.bool)
    outside[list(frames)] = False
    assert torch.equal(adv[:, outside], clean[:, outside])
    assert torch.equal(torch.round(adv * 255) / 255, adv)  # on the 8-bit grid
    assert adv.min() >= 0 and adv.max() <= 1


def test_soft_exception_index_equals_alpha_on_hard_labels():
    labels = torch.tensor([[0, 0, 1, 0, 0, 2, 2, 1], [1, 1, 1, 1, 1, 1, 1, 1], [0, 1, 0, 1, 0, 1, 0, 1]])
    logits = torch.nn.functional.one_hot(labels, 3).float() * 100.0
    alpha, _ = exception_index(labels)
    assert torch.allclose(soft_exception_index(logits).double(), alpha, atol=1e-6)


def test_margin_and_penalty_values():
    logits = torch.tensor([[2.0, 0.5, 1.0], [0.0, 3.0, 1.0]])
    assert torch.allclose(margin_loss(logits, torch.tensor([0, 0])), torch.tensor([-1.0, 3.0]))
    assert torch.allclose(margin_loss(logits, torch.tensor([0, 0]), kappa=2.0), torch.tensor([-1.0, 2.0]))
    same = torch.zeros(1, 5, 3)
    same[..., 1] = 100.0  # every frame confidently the same class
    assert float(detector_penalty(same, {"alpha": 0.0, "js_divergence": 0.0})) == 0.0
    with pytest.raises(ValueError, match="surrogate"):
        detector_penalty(same, {"nope": 0.0})


def test_quantize_within_stays_in_the_ball_on_the_grid():
    clean = torch.round(torch.rand(2, 4, 3, 8, 8, generator=torch.Generator().manual_seed(0)) * 255) / 255
    adv = (clean + (torch.rand(clean.shape) - 0.5) * 0.2).clamp(0, 1)
    q = quantize_within(adv, clean, 4 / 255)
    assert float((q - clean).abs().max()) <= 4 / 255 + 1e-6
    assert torch.equal(torch.round(q * 255) / 255, q)


def test_attack_frames_layouts():
    assert attack_frames(16, 4, "spread") == (0, 4, 8, 12)
    assert attack_frames(16, 4, "run") == (0, 1, 2, 3)
    assert attack_frames(16, None, "spread") == tuple(range(16))
    assert attack_frames(16, 3, "all") == tuple(range(16))
    with pytest.raises(ValueError):
        attack_frames(16, 4, "diagonal")


def test_registered_by_name(trained_lrcn):
    from vidshield.attacks import ATTACKS, create_attack

    assert ADAPTIVE_ATTACKS == ("consistent-sparse", "evasive-dense", "pipeline", "spsa")
    assert set(ADAPTIVE_ATTACKS) <= set(ATTACKS)
    pipe = _pipeline(trained_lrcn, "routed")
    built = {
        "consistent-sparse": create_attack("consistent-sparse", trained_lrcn, steps=3),
        "evasive-dense": create_attack("evasive-dense", trained_lrcn),
        "pipeline": create_attack("pipeline", trained_lrcn, pipeline=pipe),
        "spsa": create_attack("spsa", trained_lrcn, pipeline=pipe),
    }
    classes = (DetectorAwarePGD, EvasiveDenseAttack, PipelineAttack, SPSAAttack)
    assert [type(a) for a in built.values()] == list(classes)
    assert [a.name for a in built.values()] == list(ADAPTIVE_ATTACKS)
    assert built["consistent-sparse"].config()["steps"] == 3
    # a detector routing on another score: the attacker is held under that score too
    js = create_attack("consistent-sparse", trained_lrcn, thresholds={"js_divergence": 0.2})
    assert js.limits == {"alpha": 0.0, "js_divergence": 0.0}


def test_routes_are_the_pipelines(trained_lrcn, correct_clips):
    """The attack's view of the routing (vidshield.routing) is what the pipeline does."""
    x, y = correct_clips
    x = x.clone()
    for i, frames in ((1, [2]), (2, [2, 5]), (3, [1, 3, 5])):  # frames of another class: exceptions
        other = int((y != y[i]).nonzero()[0])
        x[i, frames] = x[other, frames]
    pipe = _pipeline(trained_lrcn, "routed")
    routes, polluted = PipelineAttack(trained_lrcn, pipeline=pipe).routes(x)
    results = pipe.run(x)
    assert routes == [r.defense for r in results]
    assert {"none", "temporal", "spatial"} <= set(routes)
    for r, route, mask in zip(results, routes, polluted):
        if route == "temporal":
            assert mask.nonzero().flatten().tolist() == r.rebuilt_frames


def test_consistent_run_fools_and_evades_the_detector(trained_lrcn, correct_clips):
    x, y = correct_clips
    x = torch.round(x * 255) / 255
    attack = DetectorAwarePGD(trained_lrcn, eps=EPS, num_frames=4, layout="run", steps=30, restarts=2)
    adv = attack(x, y, generator=torch.Generator().manual_seed(0))
    _check_budget(adv, x, EPS, range(4))
    det = TemporalConsistencyDetector(trained_lrcn)
    fooled = trained_lrcn(adv).argmax(1) != y
    alphas = torch.tensor([d.alpha for d in det.detect(adv)])
    assert int(fooled.sum()) >= 3
    assert torch.all(alphas[fooled] < det.gamma1)  # every fooled clip is called clean
    assert attack.history["success"] == (fooled & (alphas < det.gamma1)).tolist()


def test_evasive_dense_fools_while_evading(trained_lrcn, correct_clips):
    x, y = correct_clips
    x = torch.round(x * 255) / 255
    attack = EvasiveDenseAttack(trained_lrcn, eps=8 / 255, steps=30, restarts=2, gamma1=0.1)
    adv = attack(x, y, generator=torch.Generator().manual_seed(0))
    _check_budget(adv, x, 8 / 255, range(x.shape[1]))
    det = TemporalConsistencyDetector(trained_lrcn, gamma1=0.1)
    fooled = trained_lrcn(adv).argmax(1) != y
    alphas = torch.tensor([d.alpha for d in det.detect(adv)])
    success = torch.tensor(attack.history["success"])
    assert int(success.sum()) >= 2
    assert torch.equal(success, fooled & (alphas < 0.1))


def test_pipeline_attack_is_judged_by_the_real_pipeline(trained_lrcn, correct_clips):
    x, y = correct_clips
    x = torch.round(x * 255) / 255
    pipe = _pipeline(trained_lrcn, "routed")
    attack = PipelineAttack(trained_lrcn, pipeline=pipe, eps=EPS, num_frames=4, layout="spread", steps=20)
    adv = attack(x, y, generator=torch.Generator().manual_seed(0))
    _check_budget(adv, x, EPS, (0, 2, 4, 6))
    results = pipe.run(adv)
    assert attack.history["success"] == [r.label != int(t) for r, t in zip(results, y)]
    success, detected = attack.judge(adv, y)
    assert success.tolist() == attack.history["success"]
    assert detected.tolist() == [is_detected(r) for r in results]


def test_pipeline_attack_fools_the_undefended_model(trained_lrcn, correct_clips):
    x, y = correct_clips
    x = torch.round(x * 255) / 255
    attack = PipelineAttack(trained_lrcn, pipeline=_pipeline(trained_lrcn), eps=EPS, num_frames=None, steps=20)
    adv = attack(x, y, generator=torch.Generator().manual_seed(0))
    _check_budget(adv, x, EPS, range(x.shape[1]))
    assert bool((trained_lrcn(adv).argmax(1) != y).all())


def test_pipeline_attack_needs_the_pipeline_classifier(trained_lrcn):
    other = type(trained_lrcn)(num_classes=3, width=1 / 16, blocks=1, hidden=16, input_size=(8, 32, 32))
    with pytest.raises(ValueError, match="classifier"):
        PipelineAttack(other, pipeline=_pipeline(trained_lrcn))


def test_spsa_fools_the_undefended_tiny_model(trained_lrcn, correct_clips):
    x, y = correct_clips
    x, y = torch.round(x[:3] * 255) / 255, y[:3]
    eps = 48 / 255  # gradient-free needs a larger budget than PGD on this tiny model
    attack = SPSAAttack(
        trained_lrcn,
        pipeline=_pipeline(trained_lrcn),
        eps=eps,
        num_frames=None,
        steps=8,
        samples=16,
        lr=0.05,
        delta=0.03,
    )
    adv = attack(x, y, generator=torch.Generator().manual_seed(0))
    _check_budget(adv, x, eps, range(x.shape[1]))
    assert bool((trained_lrcn(adv).argmax(1) != y).all())

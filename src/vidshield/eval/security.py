"""Security evaluation of the whole pipeline against adaptive attackers (issue 13).

A *case* is (pipeline configuration, threat, attack). The attack runs against that pipeline (it
knows the detector, the routing and the defenses); its result is quantised to 8 bits and judged by
the real, non-differentiable :meth:`~vidshield.pipeline.DefensePipeline.run`: robust accuracy
(final label right), detection rate (verdict not clean, squeeze check or vote check fired). Per
threat the table reports the per-clip worst case over every attack tried (a clip counts as robust
only if no attack fooled the pipeline on it). Results are kept per case in one JSON file, written
atomically after each case, so a run resumes where it stopped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from vidshield.attacks.adaptive import (
    DetectorAwarePGD,
    EvasiveDenseAttack,
    PipelineAttack,
    SPSAAttack,
    is_detected,
)
from vidshield.jsonio import field, read_json
from vidshield.utils import atomic_write_json, module_device

__all__ = [
    "PIPELINES",
    "RANDOM_TEMPORAL",
    "EOT_SAMPLES",
    "SWEEP_THREATS",
    "THREATS",
    "ATTACK_KINDS",
    "Threat",
    "configured_pipeline",
    "judge",
    "run_cases",
    "summary_table",
    "sweep_table",
    "plot_curves",
    "plot_sweep",
]

#: The randomised temporal defense (a hardening switch of issue 13): each video's block grid shifted
#: by a random offset and its QP drawn from 30..42 around the paper's 36 (``TemporalDefense``'s
#: ``random_grid`` and ``qp_range``).
RANDOM_TEMPORAL = {"random_grid": True, "qp_range": (30, 42)}

#: Pipeline configurations: the single defenses (every clip defended the same way), the paper's
#: routing and the hardening switches on and off. Every switch is explicit: the models' own vote and
#: squeeze defaults (the checkpoint JSON's ``"detector"`` section) never decide a column.
#: ``network: "robust"``: the detector's network (its per-frame labels, its score, the
#: vote) is the adversarially trained detection network given as ``networks["robust"]``
#: (``vidshield train-detector --adversarial-eps``), not the classifier's own per-frame path.
#: ``temporal``: settings of the temporal defense (``-random``: :data:`RANDOM_TEMPORAL`; the
#: attacks then use EOT).
PIPELINES: dict[str, dict] = {
    "none": {"strategy": "none", "squeeze_check": False, "vote": False},
    "temporal": {"strategy": "temporal", "squeeze_check": False, "vote": False},
    "spatial": {"strategy": "spatial", "squeeze_check": False, "vote": False},
    "paper": {"strategy": "routed", "squeeze_check": False, "vote": False},
    "squeeze": {"strategy": "routed", "squeeze_check": True, "vote": False},
    "vote": {"strategy": "routed", "squeeze_check": False, "vote": True},
    "vote+squeeze": {"strategy": "routed", "vote": True, "squeeze_check": True},
    "paper-robust": {"strategy": "routed", "squeeze_check": False, "vote": False, "network": "robust"},
    "vote-robust": {"strategy": "routed", "squeeze_check": False, "vote": True, "network": "robust"},
    "vote-robust+squeeze": {"strategy": "routed", "vote": True, "squeeze_check": True, "network": "robust"},
    "paper-random": {"strategy": "routed", "squeeze_check": False, "vote": False, "temporal": RANDOM_TEMPORAL},
    "vote-robust-random": {
        "strategy": "routed",
        "squeeze_check": False,
        "vote": True,
        "network": "robust",
        "temporal": RANDOM_TEMPORAL,
    },
}

#: Draws of the defenses' randomness the attacks average over per step (EOT, Athalye et al. 2018)
#: against a pipeline whose temporal defense is randomised.
EOT_SAMPLES = 4


@dataclass(frozen=True)
class Threat:
    """An l_inf budget ``eps_255 / 255`` on ``frames`` frames (None: every frame)."""

    eps_255: int
    frames: int | None

    @property
    def eps(self) -> float:
        return self.eps_255 / 255

    @property
    def name(self) -> str:
        return f"eps{self.eps_255}-{'all' if self.frames is None else f'f{self.frames}'}"


#: The paper's sparse budget and the dense budget of the goals, the sweep, then the large budgets of
#: the sanity checks (every frame at 32/255 and 64/255: the attack must then reach 100 % success).
SWEEP_EPS_255 = (2, 4, 8, 16)
SWEEP_FRAMES = (1, 2, 4, 8, None)
#: The budget sweep of the issue, as threat names: every l_inf budget on every frame count.
SWEEP_THREATS = tuple(Threat(e, f).name for f in SWEEP_FRAMES for e in SWEEP_EPS_255)
THREATS: dict[str, Threat] = {
    "sparse": Threat(16, 4),
    "dense": Threat(8, None),
    **{Threat(e, f).name: Threat(e, f) for e in SWEEP_EPS_255 for f in SWEEP_FRAMES},
    **{Threat(e, None).name: Threat(e, None) for e in (32, 64)},
}


def _pipeline_attack(model, pipeline, threat: Threat, steps: int, restarts: int, *, layout: str, lam: float):
    """:class:`PipelineAttack` on ``pipeline`` within ``threat``; ``lam`` 0: no detector term (plain
    PGD through the routed pipeline). EOT over :data:`EOT_SAMPLES` draws when a defense is randomised."""
    eot = EOT_SAMPLES if getattr(pipeline.temporal, "randomised", False) else 1
    return PipelineAttack(
        model,
        pipeline=pipeline,
        eps=threat.eps,
        num_frames=threat.frames,
        layout=layout,
        steps=steps,
        restarts=restarts,
        lam=lam,
        eot=eot,
        **({"limits": {}} if lam == 0.0 else {}),
    )


#: attack kind -> factory(model, pipeline, threat, steps, restarts) -> Attack. ``pgd`` is plain PGD
#: through the routed pipeline (no detector term); ``adaptive`` adds the detector penalty with its
#: schedule; ``*-run`` perturb a contiguous run; ``consistent`` keeps the detector's scores low on
#: the undefended classifier (``evasive-dense`` for every frame).
ATTACK_KINDS: dict[str, Callable] = {
    "pgd": lambda m, p, th, s, r: _pipeline_attack(m, p, th, s, r, layout="spread", lam=0.0),
    "pgd-run": lambda m, p, th, s, r: _pipeline_attack(m, p, th, s, r, layout="run", lam=0.0),
    "adaptive": lambda m, p, th, s, r: _pipeline_attack(m, p, th, s, r, layout="spread", lam=0.1),
    "adaptive-run": lambda m, p, th, s, r: _pipeline_attack(m, p, th, s, r, layout="run", lam=0.1),
    "consistent": lambda m, p, th, s, r: (
        EvasiveDenseAttack(
            m, detector_model=p.detector.model, eps=th.eps, steps=s, restarts=r, gamma1=p.detector.gamma1
        )
        if th.frames is None
        else DetectorAwarePGD(
            m, detector_model=p.detector.model, eps=th.eps, num_frames=th.frames, layout="run", steps=s, restarts=r
        )
    ),
    "spsa": lambda m, p, th, s, r: SPSAAttack(
        m, pipeline=p, eps=th.eps, num_frames=th.frames, layout="run" if th.frames else "all", steps=s, samples=8
    ),
}


def configured_pipeline(model, name: str, *, networks: Mapping | None = None, spatial=None, temporal=None):
    """The pipeline configuration ``name`` of :data:`PIPELINES` around a loaded ``model``
    (classifier, and detection network unless the configuration names one of ``networks``), with
    the paper's thresholds and the registry's defenses (:func:`~vidshield.pipeline.build_pipeline`
    does the same from references, for the CLI).

    Raises:
        ValueError: an unknown name, or a configuration whose network is not in ``networks``.
    """
    from vidshield.defenses import create_defense
    from vidshield.detection import TemporalConsistencyDetector
    from vidshield.pipeline import DefensePipeline

    if name not in PIPELINES:
        raise ValueError(f"unknown pipeline {name!r}; known: {sorted(PIPELINES)}")
    settings = dict(PIPELINES[name])
    network = settings.pop("network", None)
    temporal_settings = settings.pop("temporal", None)
    if temporal_settings is not None:
        temporal = create_defense("temporal", **temporal_settings)
    if network is not None and network not in (networks or {}):
        raise ValueError(f"pipeline {name!r} needs the detection network {network!r}; given: {sorted(networks or {})}")
    return DefensePipeline(
        model,
        TemporalConsistencyDetector(model if network is None else networks[network]),
        temporal=temporal if temporal is not None else create_defense("temporal"),
        spatial=spatial if spatial is not None else create_defense("spatial").to(module_device(model)),
        **settings,
    )


def judge(pipeline, adv: torch.Tensor, labels: torch.Tensor) -> dict:
    """The real pipeline on ``adv``: per clip ``correct`` and ``detected`` lists, their rates,
    the routes taken and the pipeline's seconds per clip."""
    start = time.perf_counter()
    results = pipeline.run(adv)
    seconds = (time.perf_counter() - start) / len(results)
    correct = [r.label == int(y) for r, y in zip(results, labels)]
    detected = [is_detected(r) for r in results]
    return {
        "accuracy": sum(correct) / len(correct),
        "detection_rate": sum(detected) / len(detected),
        "correct": correct,
        "detected": detected,
        "defenses": [r.defense for r in results],
        "seconds_per_clip": round(seconds, 4),
    }


def _budget(clean: torch.Tensor, adv: torch.Tensor) -> dict:
    diff = (adv - clean).abs()
    return {
        "linf_255": round(float(diff.max()) * 255, 3),
        "max_frames_changed": int((diff.flatten(2).amax(2) > 0).sum(1).max()),
    }


def run_cases(
    model,
    clips: torch.Tensor,
    labels: torch.Tensor,
    cases: list[tuple[str, str, str]],
    out: Path,
    *,
    steps: int,
    restarts: int,
    spsa_steps: int = 20,
    spsa_clips: int = 8,
    seed: int = 0,
    clean_pipelines: tuple[str, ...] = (),
    networks: Mapping | None = None,
    meta: Mapping | None = None,
    log: Callable[[str], None] = print,
) -> dict:
    """Run ``(pipeline, threat, attack)`` cases not yet in ``out`` and return every result.

    ``attack`` is a key of :data:`ATTACK_KINDS` or ``transfer`` (the plain-PGD adversarial clips
    of the undefended model, ``none/<threat>/pgd``, judged by this pipeline; that case runs first
    when missing). Clean accuracy, false alarms and time of every pipeline are recorded under
    ``clean/<pipeline>`` (also for ``clean_pipelines``, which no attack runs against).
    ``networks``: the detection networks the configurations may name (see :data:`PIPELINES`).
    """
    results = {}
    if out.exists():  # resume: the cases already run
        what = f"security results {out}"
        results = read_json(out, what=what)
        field(results, "meta", dict, default={}, what=what)
        field(results, "cases", dict, default={}, what=what)
    results.setdefault("meta", {}).update(dict(meta or {}))
    commands = results["meta"].setdefault("commands", [])
    if "command" in results["meta"] and results["meta"]["command"] not in commands:
        commands.append(results["meta"]["command"])  # every process that wrote to this file
    results.setdefault("cases", {})
    pipes: dict[str, object] = {}
    adv_cache: dict[str, torch.Tensor] = {}

    def pipe(name):
        if name not in pipes:
            pipes[name] = configured_pipeline(model, name, networks=networks, spatial=_shared_spatial(pipes))
        return pipes[name]

    def save():
        atomic_write_json(out, results)

    names = (
        {c[0] for c in cases} | set(clean_pipelines) | ({"none"} if any(c[2] == "transfer" for c in cases) else set())
    )
    for pname in sorted(names):
        key = f"clean/{pname}"
        if key not in results["cases"]:
            results["cases"][key] = {"pipeline": pname, "clips": len(labels), **judge(pipe(pname), clips, labels)}
            save()
            log(f"{key}: accuracy {results['cases'][key]['accuracy']:.3f}")

    ordered = sorted(cases, key=lambda c: c[2] == "transfer")
    for pname, tname, kind in ordered:
        key = f"{pname}/{tname}/{kind}"
        if key in results["cases"]:
            continue
        threat = THREATS[tname]
        start = time.perf_counter()
        x, y = clips, labels
        history: dict = {}
        if kind == "transfer":
            src = f"none/{tname}/pgd"
            if src not in adv_cache:
                attack = ATTACK_KINDS["pgd"](model, pipe("none"), threat, steps, restarts)
                adv_cache[src] = attack(x, y, generator=torch.Generator().manual_seed(seed))
            adv = adv_cache[src]
        else:
            if kind == "spsa":
                x, y = clips[:spsa_clips], labels[:spsa_clips]
                attack = ATTACK_KINDS[kind](model, pipe(pname), threat, spsa_steps, 1)
            else:
                attack = ATTACK_KINDS[kind](model, pipe(pname), threat, steps, restarts)
            adv = attack(x, y, generator=torch.Generator().manual_seed(seed))
            history = attack.history
            if pname == "none" and kind == "pgd":
                adv_cache[key] = adv
        results["cases"][key] = {
            "pipeline": pname,
            "threat": tname,
            "eps_255": threat.eps_255,
            "frames": threat.frames,
            "attack": kind,
            "clips": len(y),
            "steps": spsa_steps if kind == "spsa" else steps,
            "restarts": 1 if kind == "spsa" else restarts,
            **_budget(x, adv),
            **judge(pipe(pname), adv, y),
            "curves": [[round(v, 4) for v in c] for c in history.get("curves", [])],
            "seconds": round(time.perf_counter() - start, 1),
        }
        save()
        r = results["cases"][key]
        log(f"{key}: accuracy {r['accuracy']:.3f} detected {r['detection_rate']:.3f} ({r['seconds']} s)")
    return results


def _shared_spatial(pipes: dict):
    """One ComDefend for every pipeline (loaded once)."""
    for p in pipes.values():
        return p.spatial
    return None


def worst_case(results: dict, pipeline: str, threat: str) -> dict | None:
    """Per-clip worst case over the attacks run on (pipeline, threat) on the full clip set (SPSA,
    on a subset, is reported apart). None when no attack ran."""
    rows = [
        r
        for k, r in results["cases"].items()
        if not k.startswith("clean/") and r["pipeline"] == pipeline and r["threat"] == threat and r["attack"] != "spsa"
    ]
    if not rows:
        return None
    correct = [all(c) for c in zip(*(r["correct"] for r in rows))]
    best = min(rows, key=lambda r: r["accuracy"])
    return {
        "accuracy": sum(correct) / len(correct),
        "strongest": best["attack"],
        "strongest_accuracy": best["accuracy"],
        "detection_rate_strongest": best["detection_rate"],
        "attacks": {r["attack"]: r["accuracy"] for r in rows},
        "clips": len(correct),
        "steps": max(r["steps"] for r in rows),
    }


def summary_table(results: dict, pipelines: list[str], threats: list[str]) -> str:
    """Markdown: robust accuracy (per-clip worst case over attacks) per threat and pipeline, with
    the clean accuracy and the false-alarm rate on top."""
    cases = results["cases"]
    head = "| | " + " | ".join(pipelines) + " |\n|---|" + "---:|" * len(pipelines) + "\n"
    clean = [cases.get(f"clean/{p}") for p in pipelines]
    lines = [
        "| clean accuracy | " + " | ".join("" if c is None else f"{100 * c['accuracy']:.1f} %" for c in clean) + " |",
        "| false alarms (clean) | "
        + " | ".join("" if c is None else f"{100 * c['detection_rate']:.1f} %" for c in clean)
        + " |",
    ]
    for t in threats:
        th = THREATS[t]
        cells = []
        for p in pipelines:
            w = worst_case(results, p, t)
            cells.append(
                ""
                if w is None
                else f"{100 * w['accuracy']:.1f} % ({w['strongest']}, det. {100 * w['detection_rate_strongest']:.0f} %)"
            )
        frames = "every frame" if th.frames is None else f"{th.frames} frames"
        lines.append(f"| {frames}, {th.eps_255}/255 | " + " | ".join(cells) + " |")
    return head + "\n".join(lines) + "\n"


def sweep_table(results: dict, pipelines: list[str]) -> str:
    """Markdown: robust accuracy (per-clip worst case, detection rate of the strongest attack in
    brackets) per number of attacked frames and pipeline (rows) and l_inf budget (columns); a
    budget not run is left empty, a row with no case run is left out."""
    head = "| frames attacked | pipeline | " + " | ".join(f"{e}/255" for e in SWEEP_EPS_255) + " |\n"
    head += "|---|---|" + "---:|" * len(SWEEP_EPS_255) + "\n"
    lines = []
    for f in reversed(SWEEP_FRAMES):
        for p in pipelines:
            cells = [worst_case(results, p, Threat(e, f).name) for e in SWEEP_EPS_255]
            if any(c is not None for c in cells):
                text = [
                    ""
                    if c is None
                    else f"{100 * c['accuracy']:.1f} % (det. {100 * c['detection_rate_strongest']:.0f} %)"
                    for c in cells
                ]
                lines.append(f"| {'every frame' if f is None else f} | {p} | " + " | ".join(text) + " |")
    return head + "\n".join(lines) + "\n"


def plot_sweep(results: dict, pipelines: list[str], path: Path) -> Path | None:
    """Robust accuracy (per-clip worst case over the attacks run) against the l_inf budget, one
    panel per pipeline, one line per number of attacked frames; clean accuracy dotted. None when
    no sweep case of these pipelines was run."""
    from vidshield.plotting import new_figure, save_figure

    panels = []
    for p in pipelines:
        lines = {}
        for f in SWEEP_FRAMES:
            points = []
            for e in SWEEP_EPS_255:
                w = worst_case(results, p, Threat(e, f).name)
                if w is not None:
                    points.append((e, 100 * w["accuracy"]))
            if points:
                lines["every frame" if f is None else f"{f} frame{'s' if f > 1 else ''}"] = points
        if lines:
            panels.append((p, lines))
    if not panels:
        return None
    fig = new_figure(4.2 * len(panels), 3.2)
    for i, (p, lines) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        for label, points in lines.items():
            ax.plot(*zip(*points), marker="o", label=label)
        clean = results["cases"].get(f"clean/{p}")
        if clean is not None:
            ax.axhline(100 * clean["accuracy"], linestyle=":", color="grey", label="clean")
        ax.set_xscale("log", base=2)
        ax.set_xticks(SWEEP_EPS_255, [f"{e}/255" for e in SWEEP_EPS_255])
        ax.set_ylim(-3, 103)
        ax.set_title(p, fontsize=9, parse_math=False)
        ax.set_xlabel("l_inf budget", fontsize=8)
        ax.set_ylabel("robust accuracy (%)", fontsize=8)
        ax.legend(fontsize=6)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_figure(fig, path, 110)


def plot_curves(results: dict, path: Path, keys: list[str] | None = None) -> Path:
    """Loss curves (mean objective of the attacked clips per step, one line per restart) of the
    given cases (default: every case with a curve), one panel each, saved as PNG."""
    from vidshield.plotting import new_figure, save_figure

    keys = keys or [k for k, r in results["cases"].items() if r.get("curves")]
    cols = 3
    rows = max(1, -(-len(keys) // cols))
    fig = new_figure(4 * cols, 2.6 * rows)
    for i, key in enumerate(keys):
        ax = fig.add_subplot(rows, cols, i + 1)
        for j, c in enumerate(results["cases"][key]["curves"]):
            ax.plot(c, label=f"restart {j}")
        ax.set_title(key, fontsize=7, parse_math=False)
        ax.set_xlabel("step", fontsize=7)
        ax.tick_params(labelsize=6)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_figure(fig, path, 110)

"""Adaptive attacks: attackers who know the detector and the whole pipeline (issue 13).

Every attack here is l_inf PGD on a frame mask (a few spread frames, a contiguous run, or every
frame) with a cosine step-size schedule, several restarts and the best iterate kept per video,
on an objective that knows the defense:

- :class:`DetectorAwarePGD` (``consistent-sparse``; ``evasive-dense`` with every frame): fool the
  classifier while keeping the detector's scores low: the margin loss minus ``lam`` times a
  differentiable surrogate of the consistency scores (:func:`detector_penalty`; Eq. 1 becomes
  the *soft exception index* of :func:`soft_exception_index`). On a contiguous run of frames the
  perturbed frames can agree with each other, so Eq. 1 sees no exception.
- :class:`PipelineAttack` (``pipeline``): the objective is the pipeline's decision on
  ``defense(x)``, with the defense the detector chooses for the *current* iterate (hard routing,
  re-evaluated every step), BPDA through the non-differentiable defenses
  (:meth:`~vidshield.defenses.base.Defense.bpda`), EOT over the defenses' randomness, and the
  detector's scores as a penalty.
- :class:`SPSAAttack` (``spsa``): gradient-free (Uesato et al. 2018), on the loss of the *real*
  pipeline's output, to check that the gradient attacks are not held back by masked gradients.

``lam`` follows a Carlini-Wagner style schedule across restarts, per video: after a restart whose
result the defender still classifies right, ``lam`` is multiplied by 10 when the result was
detected and divided by 10 when it was not. Results are quantised to 8 bits inside the budget
(:func:`quantize_within`), as a video file would carry them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import torch
from torch import nn

from vidshield.attacks.base import Attack
from vidshield.attacks.registry import register_attack
from vidshield.attacks.sparse import frame_mask, spread_frames
from vidshield.detection.scores import consensus_deviation, js_divergence
from vidshield.detection.vote import frame_vote

__all__ = [
    "ADAPTIVE_ATTACKS",
    "PIPELINE_ATTACKS",
    "LAYOUTS",
    "DetectorAwarePGD",
    "EvasiveDenseAttack",
    "PipelineAttack",
    "SPSAAttack",
    "adaptive_pgd",
    "attack_frames",
    "contiguous_frames",
    "is_detected",
    "detector_penalty",
    "margin_loss",
    "quantize_within",
    "soft_exception_index",
]

#: Where the attacked frames lie: spread over the clip (from frame 0), a contiguous run from frame 0
#: (the CNN+LSTM's first frames feed every step's output, and a run has no exception frame), or
#: every frame.
LAYOUTS = ("spread", "run", "all")


def soft_exception_index(frame_logits: torch.Tensor) -> torch.Tensor:
    """A differentiable surrogate of Eq. 1 from per-frame logits ``(N, T, K)`` -> ``(N,)``.

    With softmax ``p_t``, ``a_t = <p_t, p_{t+1}>`` is the probability that frames t and t+1 agree;
    frame t (1 <= t <= T-2) is a soft exception with weight ``(1 - a_{t-1}) (1 - a_t)``; the sum is
    divided by T. For one-hot softmaxes it equals the exception index alpha exactly.
    """
    p = frame_logits.float().softmax(dim=-1)
    disagree = 1.0 - (p[:, 1:] * p[:, :-1]).sum(-1)  # (N, T-1)
    return (disagree[:, :-1] * disagree[:, 1:]).sum(1) / frame_logits.shape[1]


def _soft_flip_rate(frame_logits: torch.Tensor) -> torch.Tensor:
    p = frame_logits.float().softmax(dim=-1)
    return (1.0 - (p[:, 1:] * p[:, :-1]).sum(-1)).mean(1)


#: score name -> differentiable surrogate ``(N, T, K) -> (N,)`` (the soft scores are their own).
_SURROGATES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "alpha": soft_exception_index,
    "flip_rate": _soft_flip_rate,
    "js_divergence": lambda f: js_divergence(f).float(),
    "consensus_deviation": lambda f: consensus_deviation(f).float(),
}


def detector_penalty(frame_logits: torch.Tensor, limits: Mapping[str, float]) -> torch.Tensor:
    """``sum over scores of relu(surrogate(frame_logits) - limit)``, ``(N,)``; the attacker keeps
    every named consistency score under its limit (e.g. ``{"alpha": 0.0}``)."""
    unknown = set(limits) - set(_SURROGATES)
    if unknown:
        raise ValueError(f"no differentiable surrogate for score(s) {sorted(unknown)}; known: {sorted(_SURROGATES)}")
    total = frame_logits.new_zeros(frame_logits.shape[0], dtype=torch.float32)
    for name, limit in limits.items():
        total = total + (_SURROGATES[name](frame_logits) - float(limit)).clamp_min(0.0)
    return total


def margin_loss(logits: torch.Tensor, labels: torch.Tensor, *, kappa: float = 5.0) -> torch.Tensor:
    """Carlini-Wagner margin ``min(max_{j != y} z_j - z_y, kappa)``, ``(N,)``, to be maximised
    (positive: misclassified)."""
    true = logits.gather(1, labels.view(-1, 1)).squeeze(1)
    other = logits.scatter(1, labels.view(-1, 1), float("-inf")).amax(1)
    return (other - true).clamp(max=kappa)


def contiguous_frames(num_total: int, k: int, start: int | None = None) -> tuple[int, ...]:
    """``k`` consecutive frames, from ``start`` (default: centred in the clip)."""
    if not 1 <= k <= num_total:
        raise ValueError(f"need 1 <= k <= num_total, got k={k}, num_total={num_total}")
    start = (num_total - k) // 2 if start is None else int(start)
    if not 0 <= start <= num_total - k:
        raise ValueError(f"a run of {k} frames from {start} does not fit in {num_total} frames")
    return tuple(range(start, start + k))


def attack_frames(num_total: int, num_frames: int | None, layout: str) -> tuple[int, ...]:
    """The attacked frames for a layout of :data:`LAYOUTS` (``num_frames`` None or T: every frame)."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    if layout == "all" or num_frames is None or num_frames >= num_total:
        return tuple(range(num_total))
    if layout == "run":
        return contiguous_frames(num_total, num_frames, 0)
    return spread_frames(num_total, num_frames)


def quantize_within(adv: torch.Tensor, clean: torch.Tensor, eps: float) -> torch.Tensor:
    """Round ``adv`` to the 8-bit grid inside ``[clean - eps, clean + eps] & [0, 1]``. When ``clean``
    is on the grid the result is exactly on it (computed in integer steps, ``floor(255 eps)`` of
    them); otherwise it is rounded and then clamped into the ball."""
    c255 = torch.round(clean * 255.0)
    if torch.equal(c255 / 255.0, clean):
        k = math.floor(eps * 255.0 + 1e-6)
        q = torch.minimum(torch.maximum(torch.round(adv * 255.0), c255 - k), c255 + k).clamp(0.0, 255.0)
        return q / 255.0
    q = torch.round(adv * 255.0) / 255.0
    return torch.minimum(torch.maximum(q, clean - eps), clean + eps).clamp(0.0, 1.0)


def _view(model: nn.Module, video: torch.Tensor, *, time: bool) -> torch.Tensor:
    """``video`` at ``model``'s own view (frame size; also clip length with ``time``), as the
    pipeline gives it (:func:`~vidshield.models.adapter.resample_video`, differentiable)."""
    from vidshield.models.adapter import resample_video

    spec = getattr(model, "input_spec", None)
    return video if spec is None else resample_video(video, spec, time=time)


def _video_and_frame_logits(model: nn.Module, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if hasattr(model, "forward_with_frames"):
        return model.forward_with_frames(video)
    return model(video), model.frame_logits(video)


# An objective maps (adv (n, T, 3, H, W) with grad, lam (n,), rows (n,) indices into the batch)
# to (gain (n,) to maximise, ok bool (n,): the cheap hard success check for this iterate).
Objective = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
# A judge maps candidate adversarial videos (quantised) and their batch rows to
# (success bool (n,), detected bool (n,)): the defender's real, non-differentiable answer.
Judge = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def adaptive_pgd(
    objective: Objective,
    judge: Judge,
    video: torch.Tensor,
    mask: torch.Tensor,
    *,
    eps: float,
    steps: int = 100,
    restarts: int = 2,
    step_size: float | None = None,
    lam: float = 1.0,
    patience: int = 10,
    generator: torch.Generator | None = None,
    history: dict | None = None,
) -> torch.Tensor:
    """l_inf PGD with restarts, a cosine step-size schedule and a per-video penalty schedule.

    Restart 0 starts at the clean video, later restarts at a uniform point of the eps ball. Within
    a restart a video stops after its iterate has been ``ok`` for ``patience`` steps in a row; its
    best iterate is the ``ok`` one with the largest gain (else the largest gain). After a restart
    ``judge`` decides on the quantised best iterates: successful videos are done; for the others
    ``lam`` is multiplied by 10 if detected, else divided by 10.

    Args:
        objective, judge: see :data:`Objective` and :data:`Judge`.
        video: ``float (N, T, 3, H, W)`` in [0, 1] (ideally on the 8-bit grid).
        mask: ``bool (N, T)`` frames that may change.
        eps: l_inf budget; step_size: first step (default ``eps / 4``), annealed to 0 by a cosine.
        steps, restarts, lam, patience: see above.
        generator: randomness of the random starts.
        history: if given, filled with ``curves`` (per restart, the mean gain of the attacked videos
            per step), ``success`` (bool per video) and ``lam`` (final per video).

    Returns:
        ``float (N, T, 3, H, W)`` on the 8-bit grid, ``|adv - video| <= eps``, frames outside
        ``mask`` unchanged.
    """
    if eps <= 0 or steps < 1 or restarts < 1 or patience < 1 or lam < 0:
        raise ValueError("need eps > 0, steps >= 1, restarts >= 1, patience >= 1 and lam >= 0")
    x = video.detach()
    n, t = x.shape[:2]
    mf = mask.to(x.device).view(n, t, 1, 1, 1).to(x.dtype)
    step_size = eps / 4 if step_size is None else step_size
    out = x.clone()
    done = torch.zeros(n, dtype=torch.bool)
    lams = torch.full((n,), float(lam))
    curves = []
    for restart in range(restarts):
        rows = (~done).nonzero().flatten()
        if rows.numel() == 0:
            break
        xs, ms, lr = x[rows], mf[rows], lams[rows].to(x.device)
        if restart == 0:
            adv = xs.clone()
        else:
            noise = torch.rand(xs.shape, generator=generator, dtype=xs.dtype).to(x.device)
            adv = (xs + (noise * 2 - 1) * eps * ms).clamp(0.0, 1.0)
        best = adv.clone()
        best_gain = torch.full((len(rows),), -math.inf, device=x.device)
        best_ok = torch.zeros(len(rows), dtype=torch.bool, device=x.device)
        streak = torch.zeros(len(rows), dtype=torch.long, device=x.device)
        live = torch.ones(len(rows), dtype=torch.bool, device=x.device)
        curve = []
        for step in range(steps + 1):
            idx = live.nonzero().flatten()
            if idx.numel() == 0:
                break
            a = adv[idx].clone().requires_grad_(step < steps)
            with torch.set_grad_enabled(step < steps):
                gain, ok = objective(a, lr[idx], rows[idx.cpu()])
            with torch.no_grad():
                ok = ok.to(x.device)
                better = (ok & ~best_ok[idx]) | ((ok == best_ok[idx]) & (gain.detach() > best_gain[idx]))
                sel = idx[better]
                best[sel] = a.detach()[better]
                best_gain[sel] = gain.detach()[better]
                best_ok[sel] |= ok[better]
                streak[idx] = torch.where(ok, streak[idx] + 1, torch.zeros_like(streak[idx]))
                live[idx] &= streak[idx] < patience
                curve.append(float(gain.detach().mean()))
            if step == steps:
                break
            (grad,) = torch.autograd.grad(gain.sum(), a)
            size = step_size * 0.5 * (1.0 + math.cos(math.pi * step / steps))
            with torch.no_grad():
                xi = xs[idx]
                moved = a.detach() + size * grad.sign() * ms[idx]
                adv[idx] = torch.minimum(torch.maximum(moved, xi - eps), xi + eps).clamp(0.0, 1.0)
        curves.append(curve)
        cand = quantize_within(best, xs, eps)
        cand = torch.where(ms.bool(), cand, xs)
        success, detected = judge(cand, rows)
        success, detected = success.cpu(), detected.cpu()
        out[rows] = cand
        done[rows] = success
        lams[rows] = torch.where(success, lams[rows], torch.where(detected, lams[rows] * 10, lams[rows] / 10))
    if history is not None:
        history.update(curves=curves, success=done.tolist(), lam=lams.tolist())
    return out


def _check_common(eps, steps, restarts, lam, layout, num_frames):
    if eps <= 0 or steps < 1 or restarts < 1 or lam < 0:
        raise ValueError("need eps > 0, steps >= 1, restarts >= 1 and lam >= 0")
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    if num_frames is not None and num_frames < 1:
        raise ValueError(f"num_frames must be >= 1 or None (every frame), got {num_frames}")


@register_attack("consistent-sparse")
class DetectorAwarePGD(Attack):
    """PGD that fools the classifier while keeping the detector's consistency scores low.

    Objective (maximised): ``margin(classifier(x)) - lam * detector_penalty(frame_logits(x))``;
    an iterate counts as ``ok`` when the classifier is fooled and every score in ``limits`` stays
    under its hard threshold (``thresholds``, default alpha < gamma1). Norm: l_inf on the chosen
    frames (the others are bit-identical).

    Args:
        model: the classifier (and detection network, unless ``detector_model`` is given).
        detector_model: the network whose per-frame labels the detector uses (default: ``model``).
        eps, steps, restarts, step_size, lam, patience: see :func:`adaptive_pgd`.
        num_frames: frames to attack (None: every frame); layout: one of :data:`LAYOUTS`.
        limits: score -> value the penalty pushes the surrogate under (default: alpha and every
            score of ``thresholds`` at 0).
        thresholds: score -> hard clean threshold for ``ok`` (default ``{"alpha": gamma1}``; the
            detector's ``{score: gamma1}`` for a detector that routes on another score).
        gamma1: the detector's clean threshold on alpha (paper 0.175).
        kappa: margin cap.
    """

    name = "consistent-sparse"

    def __init__(
        self,
        model: nn.Module,
        *,
        detector_model: nn.Module | None = None,
        eps: float = 16 / 255,
        num_frames: int | None = 4,
        layout: str = "run",
        steps: int = 100,
        restarts: int = 2,
        step_size: float | None = None,
        lam: float = 1.0,
        patience: int = 10,
        limits: Mapping[str, float] | None = None,
        thresholds: Mapping[str, float] | None = None,
        gamma1: float = 0.175,
        kappa: float = 5.0,
        targeted: bool = False,
    ):
        super().__init__(model, targeted=targeted)
        if targeted:
            raise ValueError(f"{type(self).__name__} is untargeted")
        _check_common(eps, steps, restarts, lam, layout, num_frames)
        self.detector_model = model if detector_model is None else detector_model
        if not hasattr(self.detector_model, "frame_logits"):
            raise ValueError("the detector model needs a per-frame path (frame_logits)")
        self.eps, self.num_frames, self.layout, self.steps, self.restarts = eps, num_frames, layout, steps, restarts
        self.step_size, self.lam, self.patience, self.kappa, self.gamma1 = step_size, lam, patience, kappa, gamma1
        self.thresholds = dict({"alpha": gamma1} if thresholds is None else thresholds)
        self.limits = dict({"alpha": 0.0, **dict.fromkeys(self.thresholds, 0.0)} if limits is None else limits)
        detector_penalty(torch.zeros(1, 3, 2), self.limits)  # validates the names
        self.history: dict = {}

    def config(self) -> dict:
        return {
            **super().config(),
            "eps": self.eps,
            "num_frames": self.num_frames,
            "layout": self.layout,
            "steps": self.steps,
            "restarts": self.restarts,
            "step_size": self.eps / 4 if self.step_size is None else self.step_size,
            "lam": self.lam,
            "patience": self.patience,
            "limits": self.limits,
            "thresholds": self.thresholds,
            "kappa": self.kappa,
        }

    def _logits(self, adv: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.detector_model is self.model:
            return _video_and_frame_logits(self.model, adv)
        return self.model(adv), self.detector_model.frame_logits(_view(self.detector_model, adv, time=False))

    def evades(self, frame_logits: torch.Tensor) -> torch.Tensor:
        """``bool (N,)``: every hard score in ``thresholds`` is under its threshold."""
        from vidshield.detection.scores import CONSISTENCY_SCORES

        ok = torch.ones(frame_logits.shape[0], dtype=torch.bool)
        for name, limit in self.thresholds.items():
            ok &= CONSISTENCY_SCORES[name](frame_logits.detach().cpu()) < limit
        return ok

    def perturb(self, video, labels, target, generator):
        n, t = video.shape[:2]
        mask = frame_mask(t, attack_frames(t, self.num_frames, self.layout)).to(video.device).expand(n, t)

        def objective(adv, lam, rows):
            vl, fl = self._logits(adv)
            y = labels[rows.to(labels.device)]
            gain = margin_loss(vl, y, kappa=self.kappa) - lam * detector_penalty(fl, self.limits)
            ok = (vl.detach().argmax(1) != y).cpu() & self.evades(fl)
            return gain, ok

        def judge(cand, rows):
            with torch.no_grad():
                vl, fl = self._logits(cand)
            evaded = self.evades(fl)
            return (vl.argmax(1) != labels[rows.to(labels.device)]).cpu() & evaded, ~evaded

        self.history = {}
        return adaptive_pgd(
            objective,
            judge,
            video,
            mask,
            eps=self.eps,
            steps=self.steps,
            restarts=self.restarts,
            step_size=self.step_size,
            lam=self.lam,
            patience=self.patience,
            generator=generator,
            history=self.history,
        )


@register_attack("evasive-dense")
class EvasiveDenseAttack(DetectorAwarePGD):
    """:class:`DetectorAwarePGD` on every frame (8/255) keeping alpha *and* every soft score low:
    the penalty pushes alpha's surrogate to 0 and the soft scores under ``limits`` (default: each
    soft score at 0, i.e. as consistent as the attacker can make it)."""

    name = "evasive-dense"

    def __init__(self, model: nn.Module, *, eps: float = 8 / 255, num_frames: int | None = None, **kwargs):
        kwargs.setdefault("layout", "all")
        soft = {"alpha": 0.0, "js_divergence": 0.0, "consensus_deviation": 0.0}
        kwargs.setdefault("limits", soft | dict.fromkeys(kwargs.get("thresholds") or {}, 0.0))
        super().__init__(model, eps=eps, num_frames=num_frames, **kwargs)


@register_attack("pipeline")
class PipelineAttack(Attack):
    """PGD on the whole pipeline: detect -> route -> defend -> decide, as the defender runs it.

    Each step the pipeline's detector labels the current iterate (no gradient), the pipeline's own
    routing picks the defense (``clean`` with the squeeze check on counts as ``spatial``: its answer
    is then always the label of the purified video), and the objective is the margin of the
    pipeline's decision on ``defense.bpda(x)`` (the classifier's logits, or with ``pipeline.vote``
    the log of the mean per-frame softmax), minus ``lam`` times :func:`detector_penalty` of the
    detection network's per-frame logits of ``x``, averaged over ``eot`` draws of the defenses'
    randomness (each defense pass draws its own).
    Success and detection are judged by ``pipeline.run`` on the quantised result.

    Args:
        model: the pipeline's classifier.
        pipeline: a :class:`~vidshield.pipeline.DefensePipeline`.
        eps, num_frames, layout, steps, restarts, step_size, lam, patience, kappa: see
            :class:`DetectorAwarePGD`.
        limits: the detector penalty (default ``{"alpha": 0.0}``).
        eot: samples of the defenses' randomness per step.
    """

    name = "pipeline"

    def __init__(
        self,
        model: nn.Module,
        *,
        pipeline,
        eps: float = 16 / 255,
        num_frames: int | None = 4,
        layout: str = "spread",
        steps: int = 100,
        restarts: int = 2,
        step_size: float | None = None,
        lam: float = 0.1,
        patience: int = 10,
        limits: Mapping[str, float] | None = None,
        kappa: float = 5.0,
        eot: int = 1,
        targeted: bool = False,
    ):
        super().__init__(model, targeted=targeted)
        if targeted:
            raise ValueError(f"{type(self).__name__} is untargeted")
        _check_common(eps, steps, restarts, lam, layout, num_frames)
        if eot < 1:
            raise ValueError(f"eot must be >= 1, got {eot}")
        if pipeline.classifier is not model:
            raise ValueError("model must be the pipeline's classifier")
        self.pipeline = pipeline
        self.eps, self.num_frames, self.layout, self.steps, self.restarts = eps, num_frames, layout, steps, restarts
        self.step_size, self.lam, self.patience, self.kappa, self.eot = step_size, lam, patience, kappa, eot
        self.limits = dict({"alpha": 0.0} if limits is None else limits)
        detector_penalty(torch.zeros(1, 3, 2), self.limits)
        self.history: dict = {}

    def config(self) -> dict:
        p = self.pipeline
        return {
            **super().config(),
            "eps": self.eps,
            "num_frames": self.num_frames,
            "layout": self.layout,
            "steps": self.steps,
            "restarts": self.restarts,
            "step_size": self.eps / 4 if self.step_size is None else self.step_size,
            "lam": self.lam,
            "patience": self.patience,
            "limits": self.limits,
            "kappa": self.kappa,
            "eot": self.eot,
            "pipeline": {
                "strategy": p.strategy,
                "polluted": p.polluted,
                "squeeze_check": p.squeeze_check,
                "vote": p.vote,
                "gamma1": p.detector.gamma1,
                "gamma2": p.detector.gamma2,
                "score": p.detector.score,
            },
        }

    def routes(self, adv: torch.Tensor) -> tuple[list[str], torch.Tensor]:
        """The defense the pipeline applies to each iterate (``none``/``temporal``/``spatial``) by
        :func:`vidshield.routing.route_defense`, and the temporal defense's ``polluted`` mask
        ``bool (n, T)`` (:func:`vidshield.routing.polluted_mask`). With the squeeze check a video
        routed ``none`` counts as ``spatial``: whether or not the check fires, the pipeline's
        answer is then its answer on the purified video. A ``temporal`` route with no polluted
        frame is ``none`` (the pipeline leaves such a video as it is)."""
        from vidshield.routing import polluted_mask, route_defense

        p = self.pipeline
        with torch.no_grad():
            detections = p.detector.detect(_view(p.detector.model, adv.detach(), time=False))
        polluted = polluted_mask(detections, p.polluted, adv.shape[1])
        squeeze = True if p.squeeze_check else None
        routes = []
        for i, det in enumerate(detections):
            route = route_defense(det, strategy=p.strategy, label_changed_by_spatial=squeeze)
            if route == "temporal" and not bool(polluted[i].any()):
                route = "none"
            routes.append(route)
        return routes, polluted

    def _defend(self, adv: torch.Tensor, routes: list[str], polluted: torch.Tensor) -> torch.Tensor:
        """The routed defenses on ``adv`` with BPDA gradients. A deterministic ComDefend
        (``test_noise == 0``) is run once, through its straight-through surrogate, whose value
        equals its forward pass."""
        p = self.pipeline
        out = adv
        for name in ("temporal", "spatial"):
            rows = [i for i, r in enumerate(routes) if r == name]
            if not rows:
                continue
            sub = adv[rows]
            if name == "temporal":
                done = p.temporal.bpda(sub.cpu(), polluted=polluted[rows]).to(adv.device)
            elif getattr(p.spatial, "test_noise", None) == 0:
                done = p.spatial.surrogate(sub)
            else:
                done = p.spatial.bpda(sub)
            sel = torch.zeros(adv.shape[0], dtype=torch.bool, device=adv.device)
            sel[rows] = True
            scatter = torch.zeros_like(adv).index_copy(0, torch.tensor(rows, device=adv.device), done.to(adv.dtype))
            out = torch.where(sel.view(-1, 1, 1, 1, 1), scatter, out)
        return out

    def decision_logits(self, defended: torch.Tensor) -> torch.Tensor:
        """What the pipeline decides on, differentiable: classifier logits, or with ``vote`` the
        log mean per-frame softmax of the detection network."""
        if self.pipeline.vote:
            det_model = self.pipeline.detector.model
            fl = det_model.frame_logits(_view(det_model, defended, time=False))
            return fl.softmax(-1).mean(1).clamp_min(1e-12).log()
        return self.model(_view(self.model, defended, time=True))

    def hard_decision(self, defended: torch.Tensor) -> torch.Tensor:
        """The pipeline's label ``int64 (n,)`` for already defended videos (no gradient)."""
        with torch.no_grad():
            logits = self.model(_view(self.model, defended, time=True))
            if not self.pipeline.vote:
                return logits.argmax(1).cpu()
            det_model = self.pipeline.detector.model
            labels = det_model.frame_logits(_view(det_model, defended, time=False)).argmax(-1)
            return frame_vote(labels.cpu(), logits.shape[1], logits.softmax(-1).cpu())

    def perturb(self, video, labels, target, generator):
        n, t = video.shape[:2]
        mask = frame_mask(t, attack_frames(t, self.num_frames, self.layout)).to(video.device).expand(n, t)
        det_model = self.pipeline.detector.model

        def objective(adv, lam, rows):
            routes, polluted = self.routes(adv)
            y = labels[rows.to(labels.device)]
            gain, hard = 0.0, None
            for _ in range(self.eot):  # each pass draws the defenses' own randomness anew
                defended = self._defend(adv, routes, polluted)
                gain = gain + margin_loss(self.decision_logits(defended), y, kappa=self.kappa) / self.eot
                if hard is None:
                    hard = self.hard_decision(defended.detach())
            if bool((lam > 0).any()):
                gain = gain - lam * detector_penalty(
                    det_model.frame_logits(_view(det_model, adv, time=False)), self.limits
                )
            return gain, hard != y.cpu()

        def judge(cand, rows):
            return self.judge(cand, labels[rows.to(labels.device)])

        self.history = {}
        return adaptive_pgd(
            objective,
            judge,
            video,
            mask,
            eps=self.eps,
            steps=self.steps,
            restarts=self.restarts,
            step_size=self.step_size,
            lam=self.lam,
            patience=self.patience,
            generator=generator,
            history=self.history,
        )

    def judge(self, adv: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(success, detected)`` bool ``(n,)`` from the real pipeline on ``adv``."""
        results = self.pipeline.run(adv.detach().cpu())
        success = torch.tensor([r.label != int(y) for r, y in zip(results, labels.cpu())])
        return success, torch.tensor([is_detected(r) for r in results])


def is_detected(result) -> bool:
    """The pipeline flagged this video: an attack verdict, the squeeze check or the vote check."""
    return result.verdict != "clean" or result.squeezed or result.vote_flag


@register_attack("spsa")
class SPSAAttack(Attack):
    """SPSA (Uesato et al. 2018), l_inf, gradient-free, on the real pipeline's decision.

    The loss is the margin of the pipeline's decision logits (see
    :meth:`PipelineAttack.decision_logits`) on the video the *real* pipeline produced (its
    non-differentiable defenses, no BPDA); the gradient is estimated from ``samples`` pairs of
    Rademacher perturbations of size ``delta`` and the iterate moved by Adam (lr ``lr``), then
    projected. Success is judged like :class:`PipelineAttack`.

    Args:
        model: the pipeline's classifier; pipeline: the pipeline.
        eps, num_frames, layout: budget and frames.
        steps, samples, delta, lr: SPSA's iterations, perturbation pairs per step, probe size and
            step size.
        tile: the probes are constant on ``tile x tile`` pixel squares (fewer dimensions to
            estimate, as in Ilyas et al. 2019's tiling); 1: per pixel.
    """

    name = "spsa"

    def __init__(
        self,
        model: nn.Module,
        *,
        pipeline,
        eps: float = 16 / 255,
        num_frames: int | None = 4,
        layout: str = "spread",
        steps: int = 50,
        samples: int = 16,
        delta: float = 0.01,
        lr: float = 0.01,
        tile: int = 4,
        kappa: float = 5.0,
        targeted: bool = False,
    ):
        super().__init__(model, targeted=targeted)
        if targeted:
            raise ValueError(f"{type(self).__name__} is untargeted")
        _check_common(eps, steps, 1, 0.0, layout, num_frames)
        if samples < 1 or delta <= 0 or lr <= 0 or tile < 1:
            raise ValueError("need samples >= 1, delta > 0, lr > 0 and tile >= 1")
        self.tile = tile
        self.helper = PipelineAttack(model, pipeline=pipeline, eps=eps, num_frames=num_frames, layout=layout)
        self.pipeline = pipeline
        self.eps, self.num_frames, self.layout = eps, num_frames, layout
        self.steps, self.samples, self.delta, self.lr, self.kappa = steps, samples, delta, lr, kappa
        self.history: dict = {}

    def config(self) -> dict:
        return {
            **super().config(),
            "eps": self.eps,
            "num_frames": self.num_frames,
            "layout": self.layout,
            "steps": self.steps,
            "samples": self.samples,
            "delta": self.delta,
            "lr": self.lr,
            "tile": self.tile,
        }

    def _probe(self, shape, generator) -> torch.Tensor:
        n, t, c, h, w = shape
        k = self.tile
        coarse = torch.randint(0, 2, (n, t, c, -(-h // k), -(-w // k)), generator=generator) * 2 - 1
        return coarse.repeat_interleave(k, 3).repeat_interleave(k, 4)[..., :h, :w].float()

    @torch.no_grad()
    def loss(self, adv: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Margin ``(n,)`` of the real pipeline's decision on ``adv`` (maximised by the attack)."""
        results = self.pipeline.run(adv.cpu().clamp(0.0, 1.0))
        defended = torch.stack([r.defended for r in results]).to(adv.device)
        return margin_loss(self.helper.decision_logits(defended), labels, kappa=self.kappa).cpu()

    @torch.no_grad()
    def perturb(self, video, labels, target, generator):
        n, t = video.shape[:2]
        mask = frame_mask(t, attack_frames(t, self.num_frames, self.layout)).to(video.device).expand(n, t)
        mf = mask.view(n, t, 1, 1, 1).to(video.dtype)
        x = video
        adv = x.clone()
        m, v = torch.zeros_like(x), torch.zeros_like(x)
        best, best_loss = x.clone(), torch.full((n,), -math.inf)
        curve = []
        for step in range(1, self.steps + 1):
            grad = torch.zeros_like(x)
            for _ in range(self.samples):
                sign = self._probe(x.shape, generator).to(x.device, x.dtype) * mf
                lp = self.loss((adv + self.delta * sign).clamp(0, 1), labels)
                lm = self.loss((adv - self.delta * sign).clamp(0, 1), labels)
                grad += ((lp - lm) / (2 * self.delta)).to(x.device).view(n, 1, 1, 1, 1) * sign
            grad /= self.samples
            m = 0.9 * m + 0.1 * grad
            v = 0.999 * v + 0.001 * grad * grad
            mh, vh = m / (1 - 0.9**step), v / (1 - 0.999**step)
            adv = adv + self.lr * mh / (vh.sqrt() + 1e-8) * mf
            adv = quantize_within(adv, x, self.eps)
            cur = self.loss(adv, labels)
            better = cur > best_loss
            best[better.to(x.device)] = adv[better.to(x.device)]
            best_loss = torch.where(better, cur, best_loss)
            curve.append(float(cur.mean()))
        self.history = {"curves": [curve]}
        return torch.where(mf.bool(), best, x)


#: The names this module registers in :mod:`vidshield.attacks.registry` (``create_attack(name, model, ...)``).
ADAPTIVE_ATTACKS = ("consistent-sparse", "evasive-dense", "pipeline", "spsa")
#: Those among them whose factory needs ``pipeline=``: a :class:`~vidshield.pipeline.DefensePipeline`
#: whose classifier is the victim.
PIPELINE_ATTACKS = ("pipeline", "spsa")

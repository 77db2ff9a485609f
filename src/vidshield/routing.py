"""Routing: which defense a video gets, and which frames the temporal defense rebuilds.

The one home of the paper's routing (its Figure 1) and of the squeeze check beyond it, used by
:class:`~vidshield.pipeline.DefensePipeline`, by the reproduction's Table 4
(:mod:`vidshield.eval.tables`) and by the benchmarks.

Verdict -> defense (:func:`route_defense`):

- ``clean``  -> ``none``: classify the video as it is;
- ``sparse`` -> ``temporal``: the temporal defense on the polluted frames;
- ``dense``  -> ``spatial``: the spatial defense (ComDefend) on every frame.

The fixed strategies of Table 4 (``none``, ``spatial``, ``temporal``) give their defense to every
video. The squeeze check (beyond the paper; Xu et al. 2018's feature squeezing): a video routed
``none`` whose label changes under the spatial defense is treated as densely attacked and gets
``spatial``. A universal dense perturbation shifts every frame alike, so alpha misses it; this
check does not.

Which frames the temporal defense rebuilds (:func:`polluted_frames`, ``rule``):

- ``"exceptions"`` (the paper): the detector's exception frames, frames whose label differs from
  both neighbours.
- ``"minority"`` (beyond the paper): every frame whose per-frame label differs from the clip's
  most frequent label. A sparse attack that flips a run of neighbouring frames (the reference mask
  perturbs frames 11-13 and 19-22 of 40) leaves most of the run unflagged by Eq. 1; the minority
  rule catches the whole run.
- ``"exceptions+ends"`` (beyond the paper): the exception frames plus a *one-sided exception*
  at each end of the clip: the first frame when its label differs from frame 2's while frames 2
  and 3 agree (the last frame likewise). Eq. 1 needs two neighbours, so it never sees the end
  frames, and the sparse attack's spread frames start at frame 0; this closes that blind spot
  (``benchmarks/bench_temporal_accuracy.py`` compares the rules).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from vidshield.detection.exception import Detection, route
from vidshield.names import POLLUTED_RULES

__all__ = ["STRATEGIES", "POLLUTED_RULES", "VERDICT_DEFENSES", "route_defense", "polluted_frames", "polluted_mask"]

#: ``routed`` is the paper's combined defense; the others apply one defense to every video.
STRATEGIES = ("routed", "none", "spatial", "temporal")
#: The paper's routing: verdict -> defense.
VERDICT_DEFENSES = {"clean": "none", "sparse": "temporal", "dense": "spatial"}


def _field(detection, name: str):
    return detection[name] if isinstance(detection, Mapping) else getattr(detection, name)


def route_defense(
    detection: Detection | Mapping | float,
    *,
    strategy: str = "routed",
    thresholds: tuple[float, float] | None = None,
    label_changed_by_spatial: bool | None = None,
) -> str:
    """The defense one video gets: ``"none"``, ``"temporal"`` or ``"spatial"``.

    Args:
        detection: a :class:`Detection` (or its ``to_dict()``), or a bare alpha (then
            ``thresholds`` are required).
        strategy: ``routed`` (verdict -> defense) or a fixed strategy of :data:`STRATEGIES`.
        thresholds: ``(gamma1, gamma2)`` to route the detection's alpha on; None keeps the
            detection's own verdict.
        label_changed_by_spatial: the squeeze check's evidence for a video routed ``none``: True
            when the spatial defense changes its label (it then gets ``spatial``); None when the
            check is not run. Ignored by the fixed strategies.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    if strategy != "routed":
        return strategy
    if isinstance(detection, (int, float)):
        if thresholds is None:
            raise ValueError("routing a bare alpha needs thresholds=(gamma1, gamma2)")
        verdict = route(detection, *thresholds)
    elif thresholds is not None:
        verdict = route(_field(detection, "alpha"), *thresholds)
    else:
        verdict = _field(detection, "verdict")
    defense = VERDICT_DEFENSES[verdict]
    if defense == "none" and label_changed_by_spatial:
        return "spatial"
    return defense


def polluted_frames(detection: Detection | Mapping, rule: str = "exceptions") -> list[int]:
    """Frames of one clip the temporal defense should rebuild, by ``rule`` (see the module doc)."""
    exceptions = _field(detection, "exception_frames")
    labels = list(_field(detection, "frame_labels"))
    if rule == "exceptions":
        return list(exceptions)
    if rule == "minority":
        tensor = torch.tensor(labels)
        majority = int(torch.mode(tensor).values)
        return (tensor != majority).nonzero().flatten().tolist()
    if rule == "exceptions+ends":
        frames = set(exceptions)
        if labels[0] != labels[1] == labels[2]:
            frames.add(0)
        if labels[-1] != labels[-2] == labels[-3]:
            frames.add(len(labels) - 1)
        return sorted(frames)
    raise ValueError(f"polluted rule must be one of {POLLUTED_RULES}, got {rule!r}")


def polluted_mask(detections: Sequence[Detection | Mapping], rule: str, t: int) -> torch.Tensor:
    """:func:`polluted_frames` of every clip as a bool mask ``(N, t)`` (the temporal defense's
    ``polluted`` argument)."""
    mask = torch.zeros(len(detections), t, dtype=torch.bool)
    for i, d in enumerate(detections):
        mask[i, polluted_frames(d, rule)] = True
    return mask

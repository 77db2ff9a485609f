"""Attacks on video classifiers: the sparse l2,1 attack (Wei et al. 2019), the dense universal
C-DUP / 2D-DUP attack (Li et al. 2019), l_inf PGD and adversarial framing baselines, the adaptive
attacks that know the detector and the whole pipeline (:mod:`vidshield.attacks.adaptive`), their
per-video reports, and adversarial data sets on disk. Every attack is registered by name
(:mod:`vidshield.attacks.registry`).

Example:
    >>> from vidshield.attacks import SparseAttack
    >>> adv, reports = SparseAttack(model, num_frames=4).attack_with_report(video, labels)
    >>> reports[0].success, reports[0].perturbed_frames
"""

from vidshield.attacks.adaptive import (
    ADAPTIVE_ATTACKS,
    PIPELINE_ATTACKS,
    DetectorAwarePGD,
    EvasiveDenseAttack,
    PipelineAttack,
    SPSAAttack,
)
from vidshield.attacks.base import Attack, attack_mode, predict, probability_loss
from vidshield.attacks.framing import AdversarialFraming, apply_framing, load_framing, save_framing, train_framing
from vidshield.attacks.metrics import AttackReport, perturbation_metrics
from vidshield.attacks.pgd import PGD, pgd_attack
from vidshield.attacks.registry import ATTACKS, create_attack, register_attack
from vidshield.attacks.sparse import REFERENCE_MASK_40, SparseAttack, sparse_attack, spread_frames
from vidshield.attacks.universal import (
    CDUPGenerator,
    UniversalAttack,
    apply_universal,
    load_universal,
    save_universal,
    train_cdup,
    train_universal,
)

__all__ = [
    "ATTACKS",
    "create_attack",
    "register_attack",
    "Attack",
    "AttackReport",
    "attack_mode",
    "predict",
    "probability_loss",
    "perturbation_metrics",
    "SparseAttack",
    "sparse_attack",
    "spread_frames",
    "REFERENCE_MASK_40",
    "CDUPGenerator",
    "UniversalAttack",
    "apply_universal",
    "train_universal",
    "train_cdup",
    "save_universal",
    "load_universal",
    "PGD",
    "pgd_attack",
    "AdversarialFraming",
    "apply_framing",
    "train_framing",
    "save_framing",
    "load_framing",
    "ADAPTIVE_ATTACKS",
    "PIPELINE_ATTACKS",
    "DetectorAwarePGD",
    "EvasiveDenseAttack",
    "PipelineAttack",
    "SPSAAttack",
]

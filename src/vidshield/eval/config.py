"""What a reproduction depends on: :class:`ReproduceConfig`, the data sets' default models, the
paper's numbers shown next to ours, and the defenses measured in Table 3."""

from __future__ import annotations

from dataclasses import dataclass, replace

from vidshield.errors import VidshieldError

__all__ = ["ReproduceConfig", "PAPER", "DATASET_DEFAULTS", "TABLE3_DEFENSES", "BASELINES"]

#: The paper's numbers (its Tables 1-4, UCF101), shown next to ours.
PAPER = {
    "table1": {"gamma1": 0.175, "precision": 0.68, "recall": 0.88, "f1": 0.77},
    "table2": {"gamma2": 0.30, "precision": 0.58, "recall": 0.75, "f1": 0.65},
    "table3": {
        "lrcn": {
            "clean": {"none": 0.78, "spatial": 0.66, "temporal": 0.76},
            "sparse": {"none": 0.31, "spatial": 0.55, "temporal": 0.64},
        },
        "c3d": {
            "clean": {"none": 0.89, "spatial": 0.81, "temporal": 0.88},
            "dense": {"none": 0.59, "spatial": 0.73, "temporal": 0.59},
        },
    },
    "table4": {"no_defense": 0.26, "spatial_only": 0.44, "temporal_only": 0.41, "combined": 0.48},
}

#: Shipped model names per data set.
DATASET_DEFAULTS = {
    "synthetic": {"lrcn": "synthetic-lrcn", "c3d": "synthetic-c3d"},
    "ut-interaction": {"lrcn": "ut-lrcn", "c3d": "ut-c3d"},
    "ucf101": {"lrcn": None, "c3d": None},
}

#: Table 3's columns: the paper's defenses (``temporal-minority``: the temporal defense on the
#: ``minority`` rule's frames).
TABLE3_DEFENSES = ("none", "spatial", "temporal", "temporal-minority")

#: Baseline defenses that can be measured beside the paper's (``extra_defenses``); their settings
#: are the registry's defaults (:mod:`vidshield.defenses.registry`).
BASELINES = ("h264", "jpeg", "median", "bitdepth")


@dataclass(frozen=True)
class ReproduceConfig:
    """Everything a reproduction depends on (written next to its results).

    Attributes:
        dataset: ``synthetic``, ``ut-interaction`` or ``ucf101``.
        root: data root (None: ``$VIDSHIELD_DATA`` or ../shared/data); unused for synthetic. A
            folder of packed clip sets (``train.safetensors``, ``test.safetensors`` from
            ``vidshield pack``) is read instead of the videos.
        lrcn, c3d: shipped model names or checkpoint paths (None: the data set's defaults).
        comdefend: spatial defense weights (shipped name or path).
        num_test: test clips (None: the whole test split; synthetic: 100).
        sparse_frames: frames the sparse attack perturbs (the reference: 10 of 40, a quarter).
        sparse_steps, sparse_lam, sparse_lr: the sparse attack's Adam settings (the reference
            code's: 100 steps, lambda 1, lr 0.255 on the 0-255 scale = 1e-3 here).
        dense_steps, dense_train_clips, dense_p_max: C-DUP generator training.
        dense_perturbation: a trained universal perturbation to use instead of training one (a
            path, or a name in the package zoo such as ``synthetic-c3d-cdup``).
        qp, block, search: the temporal defense.
        extra_defenses: baselines measured beside the paper's defenses in Table 3 (names of
            :data:`BASELINES`: H.264 re-encoding at CRF 28, JPEG 75, 3x3 median, 4-bit depth).
        seed: seeds the data, attacks and shifts.
        batch_size: clips per forward pass.
    """

    dataset: str = "synthetic"
    root: str | None = None
    lrcn: str | None = None
    c3d: str | None = None
    comdefend: str = "comdefend"
    num_test: int | None = None
    sparse_frames: int = 4
    sparse_steps: int = 100
    sparse_lam: float = 1.0
    sparse_lr: float = 1e-3
    dense_steps: int = 400
    dense_train_clips: int = 200
    dense_p_max: float = 10 / 255
    dense_perturbation: str | None = None
    qp: int = 36
    block: int = 8
    search: int = 7
    extra_defenses: tuple[str, ...] = ()
    seed: int = 0
    batch_size: int = 8

    def resolved(self) -> ReproduceConfig:
        if self.dataset not in DATASET_DEFAULTS:
            raise VidshieldError(f"unknown data set {self.dataset!r}; choose from {', '.join(DATASET_DEFAULTS)}")
        d = DATASET_DEFAULTS[self.dataset]
        cfg = replace(self, lrcn=self.lrcn or d["lrcn"], c3d=self.c3d or d["c3d"])
        if cfg.lrcn is None or cfg.c3d is None:
            raise VidshieldError(
                f"no shipped models for {self.dataset}: train them with `vidshield train` and pass --lrcn/--c3d"
            )
        unknown = set(cfg.extra_defenses) - set(BASELINES)
        if unknown:
            raise VidshieldError(f"unknown baseline defenses {sorted(unknown)}; choose from {', '.join(BASELINES)}")
        cfg = replace(cfg, extra_defenses=tuple(cfg.extra_defenses))
        if cfg.num_test is None and cfg.dataset == "synthetic":
            cfg = replace(cfg, num_test=100)
        return cfg

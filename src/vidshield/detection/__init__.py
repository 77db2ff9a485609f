"""Detection by temporal consistency (the first stage of the paper's framework).

Per-frame labels of the detection network -> exception index alpha (Eq. 1) -> verdict
clean / sparse / dense (thresholds gamma1, gamma2), threshold calibration (Tables 1, 2),
ROC/AUC, soft consistency scores, figures. Plots live in :mod:`vidshield.detection.plots`
(imported on demand, it pulls in matplotlib).
"""

from vidshield.detection.calibration import (
    GAMMA1_GRID,
    GAMMA2_GRID,
    CalibrationResult,
    RocCurve,
    SweepRow,
    calibrate,
    compare_scores,
    pick_best,
    roc,
    sweep,
)
from vidshield.detection.detector import (
    DetectorConfig,
    TemporalConsistencyDetector,
    collect_videos,
    detect_file,
    load_detector,
    model_default_network,
    model_squeeze_default,
    model_vote_default,
)
from vidshield.detection.exception import VERDICTS, Detection, exception_index, exception_mask, route
from vidshield.detection.scores import CONSISTENCY_SCORES, compute_scores, register_score

__all__ = [
    "CONSISTENCY_SCORES",
    "GAMMA1_GRID",
    "GAMMA2_GRID",
    "VERDICTS",
    "CalibrationResult",
    "Detection",
    "DetectorConfig",
    "RocCurve",
    "SweepRow",
    "TemporalConsistencyDetector",
    "load_detector",
    "model_default_network",
    "model_vote_default",
    "model_squeeze_default",
    "calibrate",
    "collect_videos",
    "compare_scores",
    "compute_scores",
    "detect_file",
    "exception_index",
    "exception_mask",
    "pick_best",
    "register_score",
    "roc",
    "route",
    "sweep",
]

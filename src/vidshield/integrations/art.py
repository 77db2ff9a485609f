"""IBM ART interoperability (the optional extra ``art``: ``pip install 'vidshield[art]'``).

- :class:`TemporalDefensePreprocessor`, :class:`SpatialDefensePreprocessor`: our defenses as ART
  ``PreprocessorPyTorch`` objects. ``forward`` returns the defense's output with the gradient of
  its BPDA surrogate (``Defense.bpda``, Athalye et al. 2018), so ART's white-box attacks run
  *through* the defense; ``estimate_forward`` is the surrogate itself.
- :func:`as_art_classifier`: a vidshield classifier (plus a defense chain) as an ART
  ``PyTorchClassifier`` on ``float32 (N, T, 3, H, W)`` in [0, 1], so ``ProjectedGradientDescent``,
  ``FrameSaliencyAttack`` and the rest run on it.
- :class:`TemporalConsistencyEvasionDetector`: the detector as an ART ``EvasionDetector``
  (``detect(x) -> (report, is_adversarial)``).

Example:
    >>> from art.attacks.evasion import ProjectedGradientDescent
    >>> pre = TemporalDefensePreprocessor(TemporalDefense(qp=36), frames=[0, 5, 10, 15])
    >>> art_clf = as_art_classifier(load_model("synthetic-lrcn"), defenses=[pre])
    >>> adv = ProjectedGradientDescent(art_clf, eps=8 / 255, eps_step=2 / 255, max_iter=10).generate(x.numpy())
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from vidshield.errors import VidshieldError

try:
    from art.defences.detector.evasion import EvasionDetector
    from art.defences.preprocessor.preprocessor import PreprocessorPyTorch
    from art.estimators.classification import PyTorchClassifier
except ImportError as e:  # pragma: no cover - exercised only without the extra
    raise VidshieldError(
        "vidshield.integrations.art needs IBM ART: pip install 'vidshield[art]' (adversarial-robustness-toolbox)"
    ) from e

from vidshield.defenses.base import Defense
from vidshield.detection.detector import TemporalConsistencyDetector
from vidshield.video import check_frame_mask

__all__ = [
    "DefensePreprocessor",
    "TemporalDefensePreprocessor",
    "SpatialDefensePreprocessor",
    "as_art_classifier",
    "TemporalConsistencyEvasionDetector",
]


class DefensePreprocessor(PreprocessorPyTorch):
    """A vidshield :class:`~vidshield.defenses.base.Defense` as an ART PyTorch preprocessor.

    Args:
        defense: the defense (its ``bpda`` gives the forward value and the surrogate's gradient).
        apply_fit, apply_predict: ART's switches (default: at prediction only).
        device_type: ``"cpu"`` or ``"gpu"``.

    Shape:
        ``forward(x float32 (N, T, 3, H, W) in [0, 1], y) -> (same shape, y)``.
    """

    params = ["defense"]

    def __init__(
        self, defense: Defense, *, apply_fit: bool = False, apply_predict: bool = True, device_type: str = "cpu"
    ):
        super().__init__(device_type=device_type, is_fitted=True, apply_fit=apply_fit, apply_predict=apply_predict)
        self.defense = defense
        self._check_params()

    def _check_params(self) -> None:
        if not isinstance(self.defense, Defense):
            raise ValueError(f"defense must be a vidshield Defense; got {type(self.defense).__name__}")

    def _kwargs(self, x: torch.Tensor) -> dict:
        return {}

    def forward(self, x: torch.Tensor, y=None):
        """The defense's output; its gradient is the BPDA surrogate's."""
        return self.defense.bpda(x, **self._kwargs(x)), y

    def estimate_forward(self, x: torch.Tensor, y=None) -> torch.Tensor:
        """The differentiable surrogate (BPDA's backward pass)."""
        if self.defense.differentiable:
            return self.defense(x, **self._kwargs(x))
        return self.defense.surrogate(x, **self._kwargs(x))


class TemporalDefensePreprocessor(DefensePreprocessor):
    """The temporal defense as an ART preprocessor: which frames to rebuild comes from ``frames``
    (the same indices in every clip), ``polluted`` (a callable ``x -> bool (N, T)``), or a
    ``detector`` (each clip's exception frames, as the pipeline's sparse route does)."""

    def __init__(
        self,
        defense: Defense,
        *,
        frames: Sequence[int] | None = None,
        polluted: Callable[[torch.Tensor], torch.Tensor] | None = None,
        detector: TemporalConsistencyDetector | None = None,
        **kwargs,
    ):
        if sum(v is not None for v in (frames, polluted, detector)) != 1:
            raise ValueError("give exactly one of frames=, polluted= or detector=")
        self.frames = None if frames is None else [int(f) for f in frames]
        self.polluted = polluted
        self.detector = detector
        super().__init__(defense, **kwargs)

    def _kwargs(self, x: torch.Tensor) -> dict:
        n, t = x.shape[:2]
        if self.frames is not None:
            mask = torch.zeros(n, t, dtype=torch.bool)
            mask[:, self.frames] = True
        elif self.polluted is not None:
            mask = self.polluted(x.detach())
        else:
            mask = torch.zeros(n, t, dtype=torch.bool)
            for i, d in enumerate(self.detector.detect(x.detach().clamp(0, 1))):
                mask[i, list(d.exception_frames)] = True
        return {"polluted": check_frame_mask(mask.cpu(), n, t, name="polluted").to(x.device)}


class SpatialDefensePreprocessor(DefensePreprocessor):
    """The spatial defense (ComDefend on every frame) as an ART preprocessor; its BPDA
    surrogate is ComDefend with a straight-through binarisation."""


def as_art_classifier(
    classifier: torch.nn.Module,
    *,
    defenses: Sequence[DefensePreprocessor] = (),
    loss: torch.nn.Module | None = None,
    device_type: str = "cpu",
) -> PyTorchClassifier:
    """A vidshield classifier as an ART ``PyTorchClassifier`` (input ``(T, 3, H, W)`` from its
    ``input_spec``, clip values (0, 1), the defenses as preprocessing, in the order given)."""
    spec = classifier.input_spec
    return PyTorchClassifier(
        model=classifier,
        loss=loss if loss is not None else torch.nn.CrossEntropyLoss(),
        input_shape=(spec.frames, 3, spec.height, spec.width),
        nb_classes=int(classifier.num_classes),
        clip_values=(0.0, 1.0),
        preprocessing_defences=list(defenses) or None,
        device_type=device_type,
    )


class TemporalConsistencyEvasionDetector(EvasionDetector):
    """The temporal-consistency detector behind ART's ``EvasionDetector`` interface.

    ``detect(x float32 (N, T, 3, H, W) in [0, 1]) -> (report, is_adversarial bool (N,))``; the
    report holds each clip's ``alpha``, ``score``, ``verdict`` and ``exception_frames``.
    ``fit(x)`` on clean clips sets gamma1 to the false-alarm budget ``target_fpr`` (the conformal
    quantile of :func:`~vidshield.detection.calibration.fpr_threshold`), keeping gamma2 >= gamma1.
    """

    defence_params = ["detector"]

    def __init__(self, detector: TemporalConsistencyDetector):
        super().__init__()
        self.detector = detector

    def fit(self, x: np.ndarray, y: np.ndarray | None = None, batch_size: int = 128, nb_epochs: int = 0, **kwargs):
        """Calibrate gamma1 on the clean clips of ``x`` (``y == 0`` when ``y`` is given) for
        ``target_fpr`` (keyword, default 0.05)."""
        import dataclasses

        from vidshield.detection.calibration import fpr_threshold

        target = float(kwargs.get("target_fpr", 0.05))
        clean = x if y is None else x[np.asarray(y).reshape(-1) == 0]
        report, _ = self.detect(clean, batch_size=batch_size)
        t = fpr_threshold(report["score"], target)
        cfg = self.detector.config
        self.detector.config = dataclasses.replace(
            cfg, gamma1=t.threshold, gamma2=max(cfg.gamma2, t.threshold), target_fpr=target
        )

    def detect(self, x: np.ndarray, batch_size: int = 128, **kwargs) -> tuple[dict, np.ndarray]:
        video = torch.as_tensor(np.asarray(x, dtype=np.float32))
        detections = []
        for i in range(0, video.shape[0], batch_size):
            detections += self.detector.detect(video[i : i + batch_size])
        report = {
            "alpha": [d.alpha for d in detections],
            "score": [d.score for d in detections],
            "verdict": [d.verdict for d in detections],
            "exception_frames": [list(d.exception_frames) for d in detections],
        }
        return report, np.array([d.verdict != "clean" for d in detections], dtype=bool)

"""Victim video classifiers (C3D, CNN+LSTM), their registry, checkpoints, training and evaluation.

Example:
    >>> from vidshield.models import create_model
    >>> model = create_model("test-lrcn", num_classes=3)
    >>> model.input_spec.frames, model.has_frame_logits
    (16, True)
"""

from vidshield.models.base import InputSpec, VideoClassifier, normalize_video
from vidshield.models.c3d import C3D
from vidshield.models.checkpoints import list_shipped, load_model, model_metadata, resolve_artifact, save_model
from vidshield.models.lrcn import LRCN
from vidshield.models.predict import predict_labels
from vidshield.models.registry import MODEL_REGISTRY, create_model, list_models, register_model

__all__ = [
    "InputSpec",
    "VideoClassifier",
    "normalize_video",
    "C3D",
    "LRCN",
    "MODEL_REGISTRY",
    "create_model",
    "list_models",
    "register_model",
    "save_model",
    "load_model",
    "list_shipped",
    "model_metadata",
    "resolve_artifact",
    "predict_labels",
]

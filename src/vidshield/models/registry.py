"""The model registry: a dict of factories filled by :func:`register_model`, and
:func:`create_model`.

Registered architectures (input as T x H x W):

=============  ==========================================================  ============
name           what                                                        input
=============  ==========================================================  ============
``c3d``        C3D as published (78.4 M parameters with 101 classes)       16x112x112
``c3d-small``  C3D with 1/8 of the channels and fc size (~1 M), BatchNorm   16x64x64
``lrcn``       CNN+LSTM, VGG-like frame CNN (64..512, 2 convs per stage),  40x112x112
               LSTM 512
``lrcn-small`` frame CNN 16..128 (1 conv per stage), LSTM 128              16x64x64
``test-c3d``   tiny C3D for CPU tests                                      16x32x32
``test-lrcn``  tiny CNN+LSTM for CPU tests                                 16x32x32
=============  ==========================================================  ============

Every factory takes ``num_classes`` and keyword overrides of the model's constructor arguments
(e.g. ``create_model("c3d-small", num_classes=6, input_size=(16, 112, 112))``).
"""

from __future__ import annotations

from collections.abc import Callable

from vidshield.models.base import VideoClassifier
from vidshield.models.c3d import C3D
from vidshield.models.lrcn import LRCN

ModelFactory = Callable[..., VideoClassifier]

MODEL_REGISTRY: dict[str, ModelFactory] = {}


def register_model(name: str) -> Callable[[ModelFactory], ModelFactory]:
    """Decorator: register ``factory(*, num_classes, **overrides) -> VideoClassifier`` as ``name``."""

    def decorator(factory: ModelFactory) -> ModelFactory:
        if name in MODEL_REGISTRY:
            raise ValueError(f"model {name!r} is already registered")
        MODEL_REGISTRY[name] = factory
        return factory

    return decorator


def list_models() -> list[str]:
    """Names of the registered architectures, sorted."""
    return sorted(MODEL_REGISTRY)


def create_model(name: str, *, num_classes: int, **overrides) -> VideoClassifier:
    """Build a registered architecture with fresh weights.

    Args:
        name: a registered name (see :func:`list_models`).
        num_classes: number of classes K.
        **overrides: constructor arguments replacing the variant's defaults (JSON-compatible
            values, so a checkpoint can store them).

    Returns:
        The model, with ``arch_name`` and ``arch_config`` (the overrides) set.

    Raises:
        ValueError: unknown name or invalid arguments.
    """
    if name not in MODEL_REGISTRY:
        raise ValueError(f"unknown model {name!r}; registered: {', '.join(list_models())}")
    try:
        model = MODEL_REGISTRY[name](num_classes=num_classes, **overrides)
    except TypeError as e:
        raise ValueError(f"invalid arguments for model {name!r}: {e}") from e
    model.arch_name = name
    model.arch_config = dict(overrides)
    return model


def _with_defaults(defaults: dict, overrides: dict) -> dict:
    return {**defaults, **overrides}


@register_model("c3d")
def c3d(*, num_classes: int, **overrides) -> C3D:
    return C3D(num_classes=num_classes, **_with_defaults({"width": 1.0, "input_size": (16, 112, 112)}, overrides))


@register_model("c3d-small")
def c3d_small(*, num_classes: int, **overrides) -> C3D:
    return C3D(
        num_classes=num_classes,
        **_with_defaults({"width": 0.125, "input_size": (16, 64, 64), "batch_norm": True}, overrides),
    )


@register_model("test-c3d")
def test_c3d(*, num_classes: int, **overrides) -> C3D:
    return C3D(
        num_classes=num_classes,
        **_with_defaults({"width": 1 / 32, "input_size": (16, 32, 32), "batch_norm": True}, overrides),
    )


@register_model("lrcn")
def lrcn(*, num_classes: int, **overrides) -> LRCN:
    defaults = {"width": 1.0, "blocks": 2, "hidden": 512, "dropout": 0.5, "input_size": (40, 112, 112)}
    return LRCN(num_classes=num_classes, **_with_defaults(defaults, overrides))


@register_model("lrcn-small")
def lrcn_small(*, num_classes: int, **overrides) -> LRCN:
    defaults = {"width": 0.25, "blocks": 1, "hidden": 128, "dropout": 0.2, "input_size": (16, 64, 64)}
    return LRCN(num_classes=num_classes, **_with_defaults(defaults, overrides))


@register_model("test-lrcn")
def test_lrcn(*, num_classes: int, **overrides) -> LRCN:
    defaults = {"width": 1 / 16, "blocks": 1, "hidden": 16, "dropout": 0.0, "input_size": (16, 32, 32)}
    return LRCN(num_classes=num_classes, **_with_defaults(defaults, overrides))

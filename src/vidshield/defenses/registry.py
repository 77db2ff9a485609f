"""The registry of defenses: one place that maps a name to a defense and its default settings.

Every command, the reproduction and the benchmarks build defenses with :func:`create_defense`;
nothing else constructs the baselines by hand. Built-in names (settings as measured in the
README's tables):

=============  =====================================================  ======================
name           defense                                                defaults
=============  =====================================================  ======================
``temporal``   :class:`~vidshield.defenses.temporal.TemporalDefense`  QP 36, 8x8 blocks, range 7
``spatial``    :class:`~vidshield.defenses.spatial.SpatialDefense`    shipped ``comdefend`` weights
``jpeg``       :class:`~vidshield.defenses.spatial.JpegDefense`       quality 75
``median``     :class:`~vidshield.defenses.spatial.MedianDefense`     3x3
``bitdepth``   :class:`~vidshield.defenses.spatial.BitDepthDefense`   4 bits
``h264``       :class:`~vidshield.defenses.h264.H264Defense`          CRF 28
=============  =====================================================  ======================

Adding one: decorate a :class:`~vidshield.defenses.Defense` subclass (or any factory returning one)
with ``@register_defense("name", setting=default, ...)`` in a module imported by
``vidshield.defenses``. :data:`DEFENSES` is a plain dict ``name -> functools.partial(factory,
**defaults)``; keyword arguments of :func:`create_defense` override the defaults.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from vidshield.errors import VidshieldError

__all__ = ["DEFENSES", "register_defense", "create_defense", "defense_defaults"]

#: name -> ``functools.partial(factory, **defaults)``.
DEFENSES: dict[str, functools.partial] = {}


def register_defense(name: str, **defaults) -> Callable:
    """Class decorator: register ``cls`` under ``name`` with its default settings."""

    def decorate(factory):
        if name in DEFENSES:
            raise ValueError(f"a defense named {name!r} is already registered")
        DEFENSES[name] = functools.partial(factory, **defaults)
        return factory

    return decorate


def defense_defaults(name: str) -> dict:
    """The registered default settings of ``name`` (a copy)."""
    return dict(_entry(name).keywords)


def create_defense(name: str, **kwargs):
    """A new defense ``name`` with its registered defaults, overridden by ``kwargs``.

    Raises:
        VidshieldError: an unknown name (the message lists the known ones).
    """
    return _entry(name)(**kwargs)


def _entry(name: str) -> functools.partial:
    if name not in DEFENSES:
        raise VidshieldError(f"unknown defense {name!r}; choose from {', '.join(DEFENSES)}")
    return DEFENSES[name]

"""The registry of attacks: one place that maps a name to an attack on a given model.

``vidshield attack --attack NAME`` and the reproduction build their attacks with
:func:`create_attack`. Built-in names:

============  ==========================================================================
name          attack (keyword arguments are the class's)
============  ==========================================================================
``sparse``    :class:`~vidshield.attacks.SparseAttack`, the sparse l2,1 attack (Wei et al.)
``pgd``       :class:`~vidshield.attacks.PGD`, l_inf PGD on all or some frames
``dense``     :class:`~vidshield.attacks.UniversalAttack`, a trained C-DUP / 2D-DUP
              perturbation (Li et al.): ``perturbation=TENSOR`` or ``checkpoint=PATH``
``framing``   :class:`~vidshield.attacks.AdversarialFraming`, a trained border:
              ``framing=TENSOR, width=W`` or ``checkpoint=PATH``
============  ==========================================================================

The adaptive attacks (:mod:`vidshield.attacks.adaptive`, issue 13) register themselves too:

=====================  ================================================================
name                   attack
=====================  ================================================================
``consistent-sparse``  :class:`~vidshield.attacks.DetectorAwarePGD`: fool the classifier,
                       keep the detector's consistency scores low (``detector_model=``)
``evasive-dense``      :class:`~vidshield.attacks.EvasiveDenseAttack`: the same on every frame
``pipeline``           :class:`~vidshield.attacks.PipelineAttack`: PGD through the whole
                       pipeline (``pipeline=`` a DefensePipeline around the victim)
``spsa``               :class:`~vidshield.attacks.SPSAAttack`: gradient-free, on the real
                       pipeline (``pipeline=``)
=====================  ================================================================

Adding one: decorate a factory ``(model, **kwargs) -> Attack`` (an
:class:`~vidshield.attacks.Attack` subclass is one) with ``@register_attack("name")`` in a module
that is imported before :func:`create_attack` is called (the built-in ones are registered where
they are defined, when :mod:`vidshield.attacks` is imported). :data:`ATTACKS` is a plain dict ``name -> factory``.
"""

from __future__ import annotations

from collections.abc import Callable

from vidshield.errors import VidshieldError

__all__ = ["ATTACKS", "register_attack", "create_attack"]

#: name -> factory ``(model, **kwargs) -> Attack``.
ATTACKS: dict[str, Callable] = {}


def register_attack(name: str) -> Callable:
    """Decorator: register a factory ``(model, **kwargs) -> Attack`` under ``name``."""

    def decorate(factory):
        if name in ATTACKS:
            raise ValueError(f"an attack named {name!r} is already registered")
        ATTACKS[name] = factory
        return factory

    return decorate


def create_attack(name: str, model, **kwargs):
    """A new attack ``name`` on ``model``; ``kwargs`` go to its factory.

    Raises:
        VidshieldError: an unknown name (the message lists the known ones).
    """
    if name not in ATTACKS:
        raise VidshieldError(f"unknown attack {name!r}; choose from {', '.join(ATTACKS)}")
    return ATTACKS[name](model, **kwargs)

"""Defenses: video -> purified video of the same shape and range (one signature, see
:mod:`vidshield.defenses.base`), and their registry (:mod:`vidshield.defenses.registry`)."""

from vidshield.defenses import h264, spatial, temporal  # noqa: F401  (importing them registers them)
from vidshield.defenses.base import Defense
from vidshield.defenses.registry import DEFENSES, create_defense, defense_defaults, register_defense

__all__ = ["DEFENSES", "Defense", "create_defense", "defense_defaults", "register_defense"]

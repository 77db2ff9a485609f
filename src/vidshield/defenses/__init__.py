"""Defenses: video -> purified video of the same shape and range."""

from vidshield.defenses.base import Defense

__all__ = ["Defense"]

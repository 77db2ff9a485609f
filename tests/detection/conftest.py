"""Fixtures for the detection tests (the fake classifiers live in ``fakes.py``)."""

from __future__ import annotations

import pytest
from tests.detection.fakes import MeanColourClassifier


@pytest.fixture
def colour_model() -> MeanColourClassifier:
    return MeanColourClassifier()

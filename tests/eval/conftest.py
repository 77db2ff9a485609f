"""Tiny model checkpoints for the end-to-end tests (made here, no shipped weights needed)."""

import pytest
import torch

from vidshield.checkpoint import save_checkpoint
from vidshield.defenses.spatial import ComDefend
from vidshield.defenses.spatial.comdefend import ARCHITECTURE
from vidshield.models import create_model, save_model


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    """Untrained test-lrcn / test-c3d (10 synthetic classes) and a random ComDefend, as checkpoints."""
    root = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    lrcn = save_model(create_model("test-lrcn", num_classes=10), root / "lrcn")
    c3d = save_model(create_model("test-c3d", num_classes=10), root / "c3d")
    comdefend = save_checkpoint(root / "comdefend", ComDefend().state_dict(), {"architecture": ARCHITECTURE})
    return {"lrcn": str(lrcn), "c3d": str(c3d), "comdefend": str(comdefend)}

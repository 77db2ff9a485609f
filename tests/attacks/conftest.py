"""Fixtures: a tiny CNN+LSTM trained for a few Adam steps on synthetic action clips, so that
"the attack lowers accuracy" is meaningful, and a small batch of test clips it mostly gets right."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vidshield.attacks.base import predict
from vidshield.data.synthetic import SyntheticActions
from vidshield.models import create_model

NUM_CLASSES = 3
FRAMES, SIZE = 8, 32


def _clips(num: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    ds = SyntheticActions(num, num_classes=NUM_CLASSES, frames=FRAMES, height=SIZE, width=SIZE, seed=seed)
    return torch.stack([ds[i][0] for i in range(num)]), torch.tensor(ds.labels, dtype=torch.int64)


@pytest.fixture(scope="session")
def train_clips():
    return _clips(48, seed=0)


@pytest.fixture(scope="session")
def trained_lrcn(train_clips):
    """test-lrcn (8 x 32 x 32, 3 classes) after 60 Adam steps; returned in eval mode."""
    torch.manual_seed(0)
    x, y = train_clips
    model = create_model("test-lrcn", num_classes=NUM_CLASSES, input_size=(FRAMES, SIZE, SIZE))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(60):
        idx = torch.randint(0, len(y), (16,), generator=g)
        loss = F.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.zero_grad(set_to_none=True)
    model.eval()
    return model


@pytest.fixture(scope="session")
def correct_clips(trained_lrcn):
    """Six held-out clips that the trained model classifies correctly."""
    x, y = _clips(24, seed=1)
    keep = (predict(trained_lrcn, x) == y).nonzero().flatten()[:6]
    assert len(keep) == 6, "the tiny model should get at least 6 of 24 held-out clips right"
    return x[keep].clone(), y[keep].clone()

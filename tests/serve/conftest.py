"""Fixtures for the service tests: tiny models, and an app factory on a temporary data folder.

Without the serve extra (``pip install -e '.[serve]'``) these tests are not collected; the
Makefile installs it, so ``make test`` runs them."""

from __future__ import annotations

import importlib.util

import pytest
from tests.serve.helpers import make_tiny_models

if importlib.util.find_spec("fastapi") is None:
    collect_ignore_glob = ["test_*.py"]


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    return make_tiny_models(tmp_path_factory.mktemp("serve-models"))


@pytest.fixture
def settings(tiny_models):
    from vidshield.serve import ScanSettings

    return ScanSettings(models={"tiny": tiny_models["lrcn"]}, comdefend=tiny_models["comdefend"])


@pytest.fixture
def make_client(tmp_path, settings):
    """``make_client(**ServeConfig fields) -> TestClient`` (entered: the lifespan runs); data in
    ``tmp_path / "data"`` unless given; every client is closed at the end of the test."""
    from fastapi.testclient import TestClient

    from vidshield.serve import ServeConfig, create_app

    clients = []

    def make(**kwargs):
        kwargs.setdefault("data_dir", tmp_path / "data")
        kwargs.setdefault("workers", 0)
        kwargs.setdefault("settings", settings)
        client = TestClient(create_app(ServeConfig(**kwargs)))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for c in clients:
        c.__exit__(None, None, None)

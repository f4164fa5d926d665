"""Shared fixtures for the dataset tests: the committed sample documents."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing here may reach the network

pytest.importorskip("pypdf")  # the `dataset` extra

DOCS = Path(__file__).resolve().parent / "docs"


@pytest.fixture
def docs() -> Path:
    return DOCS

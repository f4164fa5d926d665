"""Shared fixtures for the dataset tests: the committed sample documents."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("pypdf")  # the `dataset` extra

DOCS = Path(__file__).resolve().parent / "docs"


@pytest.fixture
def docs() -> Path:
    return DOCS

"""Shared fixtures. Tests run from any directory; paths are anchored at the repository root."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"


@pytest.fixture
def repo_root(monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(REPO)
    return REPO


@pytest.fixture
def write_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Write a config file into tmp_path (the working directory) and return its relative path,
    so diagnostics read `config.yaml:LINE:COL` as they do for a user."""
    monkeypatch.chdir(tmp_path)

    def write(text: str, name: str = "config.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return Path(name)

    return write


MINIMAL = """\
model_config:
  name: minimal
  base_model: ./model
  dataset:
    source: {type: local, path: ./train.jsonl}
"""

"""Helpers the registry tests import (a module of its own: every test folder has a conftest)."""

from __future__ import annotations

import shutil
from pathlib import Path


def make_adapter_copy(adapter_dir: Path, dest: Path, salt: str) -> Path:
    """A distinct adapter: the same files with a different README (a new version's content)."""
    shutil.copytree(adapter_dir, dest)
    (dest / "README.md").write_text(f"adapter {salt}\n")
    return dest

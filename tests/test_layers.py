"""The layering contracts (pyproject.toml's [tool.importlinter]) hold and cover every package."""

import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
# Data packages: Jinja templates and the JSON Schema, read as files, never imported as code.
DATA_PACKAGES = {"lfm.templates", "lfm.schemas"}


def _top_level_packages() -> set[str]:
    packages = PYPROJECT["tool"]["setuptools"]["packages"]
    return {".".join(p.split(".")[:2]) for p in packages} - DATA_PACKAGES


def _layered() -> set[str]:
    contract = next(
        c for c in PYPROJECT["tool"]["importlinter"]["contracts"] if c["type"] == "layers"
    )
    return {name.strip().strip("()") for layer in contract["layers"] for name in layer.split("|")}


def test_every_package_has_a_layer():
    """A new package (serving, ui, ...) is placed in the layers before it lands."""
    assert _top_level_packages() <= _layered()
    assert set(PYPROJECT["tool"]["importlinter"]["root_packages"]) == _top_level_packages()


def test_the_contracts_hold(monkeypatch: pytest.MonkeyPatch):
    from importlinter.cli import lint_imports

    monkeypatch.chdir(REPO)
    assert lint_imports(no_cache=True) == 0


def test_every_package_is_linted():
    """A new package's folder is on `make lint`'s list, which CI runs (`.ci/run` is `make
    check`, whose first steps are the install and `make lint`)."""
    folders = {
        PYPROJECT["tool"]["setuptools"]["package-dir"][package] for package in _top_level_packages()
    }
    makefile = (REPO / "Makefile").read_text()
    listed = next(line for line in makefile.splitlines() if line.startswith("PACKAGES ="))
    assert folders <= set(listed.split("=", 1)[1].split())
    check = makefile.split("\ncheck:", 1)[1].split("\n\n", 1)[0]
    assert "$(MAKE) lint" in check
    assert "make check" in (REPO / ".ci" / "run").read_text()

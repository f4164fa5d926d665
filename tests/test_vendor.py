"""What a bundle carries of lfm: the compiling lfm's own runtime, as source."""

from __future__ import annotations

import importlib.util
from importlib.machinery import ModuleSpec
from pathlib import Path

import pytest
from lfm.compiler import vendor
from lfm.compiler.diagnostics import CompileError

REPO = Path(__file__).resolve().parent.parent


def test_the_runtime_travels_as_its_own_files():
    files = vendor.vendored_files(("runtime",))
    assert files["lfm-runtime/lfm/runtime/data.py"] == (REPO / "runtime" / "data.py").read_text()
    assert "lfm-runtime/lfm/runtime/evaluation/run.py" in files  # subpackages too
    assert not any("__pycache__" in path for path in files)


def test_a_bundles_runtime_installed_here_is_never_vendored(tmp_path, monkeypatch):
    """A bundle's lfm-runtime installed in this environment shadows lfm's own runtime: compiling
    would copy that one into every new bundle. It is an error instead."""
    shadow = tmp_path / "site-packages" / "lfm" / "runtime"
    shadow.mkdir(parents=True)
    spec = ModuleSpec("lfm.runtime", None, is_package=True)
    spec.submodule_search_locations = [str(shadow)]
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: spec)
    vendor._package_files.cache_clear()
    try:
        with pytest.raises(CompileError, match="pip uninstall lfm-runtime"):
            vendor.vendored_files(("runtime",))
    finally:
        vendor._package_files.cache_clear()

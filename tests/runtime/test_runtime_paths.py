"""Config path values: local paths resolve against the bundle, hub ids pass through."""

from __future__ import annotations

from pathlib import Path

import pytest
from lfm.runtime import paths


@pytest.mark.parametrize(
    "value", [".", "..", "./model", "../../examples/tiny-model", "/abs/x", "~"]
)
def test_local_values(value: str) -> None:
    assert paths.is_local(value)


@pytest.mark.parametrize("value", ["meta-llama/Llama-2-7b-hf", "gpt2", "data/train.jsonl", ""])
def test_hub_ids_are_not_local(value: str) -> None:
    assert not paths.is_local(value)


def test_resolve_relative_against_base_dir(tmp_path: Path) -> None:
    bundle = tmp_path / "build" / "bundle"
    assert paths.resolve("../../model", bundle) == str(tmp_path / "model")
    assert paths.resolve(".", bundle) == str(bundle)


def test_resolve_absolute_and_home(tmp_path: Path) -> None:
    assert paths.resolve(str(tmp_path / "m"), "/elsewhere") == str(tmp_path / "m")
    assert paths.resolve("~/m", tmp_path) == str(Path.home() / "m")


def test_resolve_passes_hub_ids_through(tmp_path: Path) -> None:
    assert paths.resolve("meta-llama/Llama-2-7b-hf", tmp_path) == "meta-llama/Llama-2-7b-hf"


def test_resolve_local_accepts_bare_relative_paths(tmp_path: Path) -> None:
    assert paths.resolve_local("data/q.jsonl", tmp_path) == tmp_path / "data" / "q.jsonl"

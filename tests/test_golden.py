"""Golden bundles: every example compiles to exactly what build/ holds, on any hash seed.

After an intended change to the compiler, regenerate them with `make regen`
(python -m lfm.compiler.golden --regen) and review the diff.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from lfm.compiler.golden import bundle_dir_for, example_configs
from lfm.compiler.pipeline import compile_config
from lfm.compiler.write import check_bundle

REPO = Path(__file__).resolve().parent.parent
CONFIGS = example_configs(REPO)


def test_there_are_examples():
    names = {c.stem for c in CONFIGS}
    assert {"quickstart", "seed_unified", "seed_phase2_qlora"} <= names


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.name)
def test_example_matches_its_golden_bundle(config, monkeypatch):
    monkeypatch.chdir(REPO)
    rel = config.relative_to(REPO)
    out = bundle_dir_for(rel)
    diffs = check_bundle(compile_config(rel, out).files, out)
    assert not diffs, "".join(diffs) + "\nregenerate with: make regen"


def test_output_is_identical_across_hash_seeds(tmp_path):
    outputs = []
    for seed in ("0", "1", "12345"):
        out = tmp_path / seed
        env = {**os.environ, "PYTHONHASHSEED": seed}
        subprocess.run(
            [
                sys.executable,
                "-m",
                "lfm.cli",
                "compile",
                "examples/seed_unified.json",
                "-o",
                str(out),
            ],
            cwd=REPO,
            env=env,
            check=True,
            capture_output=True,
        )
        outputs.append(
            {p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
        )
    assert outputs[0] == outputs[1] == outputs[2]

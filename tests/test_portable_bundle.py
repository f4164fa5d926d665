"""A compiled bundle runs alone: copied into an empty folder and installed into a fresh
virtualenv from its own requirements.txt (torch first), with nothing of this source tree
importable. It trains and evaluates as the same bundle does from the source tree.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
ENV = {
    key: value
    for key, value in os.environ.items()
    if key not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
} | {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1"}

CONFIG = """\
model_config:
  name: portable
  version: 0.3.0
  base_model: {model}
  fine_tuning:
    method: lora
    parameters: {{r: 8, lora_alpha: 16, lora_dropout: 0.0,
                 target_modules: [q_proj, k_proj, v_proj, o_proj]}}
    training: {{epochs: 2, batch_size: 8, learning_rate: 3.0e-3, logging_steps: 1,
               save_steps: 50, precision: fp32}}
  dataset:
    source: {{type: local, path: {data}}}
    preprocessing: {{format: alpaca, max_length: 128}}
    validation: {{split_ratio: 0.1}}
  evaluation:
    metrics: [perplexity, f1]
    generation: {{max_new_tokens: 8}}
    gates: {{max_perplexity: 100000}}
  deployment:
    target: docker
"""


def run(command: list[str], cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess:
    done = subprocess.run(
        command, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, f"{command}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def results(bundle: Path) -> tuple[float, float]:
    """(final training loss, evaluation perplexity) of a bundle's run."""
    output = bundle / "output"
    metrics = json.loads((output / "metrics.json").read_text())
    evaluated = json.loads((output / "eval" / "eval_results.json").read_text())
    return metrics["final_loss"], evaluated["evaluation_results"]["metrics"]["perplexity"]["value"]


def test_a_bundle_installs_and_runs_without_the_source_tree(tmp_path: Path) -> None:
    run([sys.executable, "-m", "lfm.cli", "dev", "tiny-model", str(tmp_path / "model")], tmp_path)
    shutil.copy(REPO / "examples" / "data" / "quickstart.jsonl", tmp_path / "data.jsonl")
    config = tmp_path / "portable.yaml"
    config.write_text(CONFIG.format(model=tmp_path / "model", data=tmp_path / "data.jsonl"))
    source = tmp_path / "src" / "portable"
    run([sys.executable, "-m", "lfm.cli", "compile", str(config), "-o", str(source)], tmp_path)
    alone = tmp_path / "alone" / "portable"
    shutil.copytree(source, alone)  # before it trains: the bundle as committed

    # From the source tree (lfm installed for development), as the end-to-end tests run it.
    run([sys.executable, "train.py"], source)
    run([sys.executable, "evaluate.py"], source)

    # A fresh virtualenv: torch first, as the README says, then the bundle's requirements.
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = str(env_dir / "bin" / "python")
    run([python, "-m", "pip", "install", "--quiet", "torch==2.13.0"], alone)
    run([python, "-m", "pip", "install", "--quiet", "-r", "requirements.txt"], alone)
    where = run([python, "-c", "import lfm.runtime; print(lfm.runtime.__file__)"], alone)
    assert str(env_dir) in where.stdout  # the bundle's copy, installed into the venv
    for absent in ("lfm.compiler", "lfm.cli", "lfm.registry"):
        probe = subprocess.run([python, "-c", f"import {absent}"], cwd=alone, env=ENV)
        assert probe.returncode != 0, f"{absent} is importable: the source tree leaked in"

    run([python, "train.py"], alone)
    run([python, "evaluate.py"], alone)
    assert results(alone) == pytest.approx(results(source), rel=1e-5)

    # The training image installs exactly what the venv did: the same requirements file, with
    # the runtime it names copied in first.
    dockerfile = (alone / "Dockerfile").read_text()
    installs = re.findall(r"pip install [^\n]*", dockerfile)
    assert installs == ["pip install --no-cache-dir -r requirements.txt \\"], installs
    copies = re.findall(r"^COPY (\S+) \S+$", dockerfile, re.MULTILINE)
    assert copies[:2] == ["requirements.txt", "lfm-runtime"]
    lines = (alone / "requirements.txt").read_text().splitlines()
    assert [line for line in lines if line.startswith("./")] == ["./lfm-runtime"]

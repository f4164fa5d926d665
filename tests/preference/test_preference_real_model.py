"""Proof that DPO learns a preference on the real model (slow): SmolLM2-135M-Instruct (from its
PyPI wheel, `lfm dev real-model`) with LoRA, on pairs made from the Python tutorial's Q&A (each
question's own answer over another question's), must raise the held-out pairs' preference
accuracy and log-probability margin above the start, and TRL's held-out DPO reward margin above
zero (benchmarks/preference.py's lfm run, which this runs)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _benchmark():
    path = REPO / "benchmarks" / "preference.py"
    spec = importlib.util.spec_from_file_location("preference_benchmark", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_dpo_raises_the_held_out_preference_of_a_real_model(tmp_path: Path) -> None:
    pytest.importorskip("gguf")
    pytest.importorskip("trl")
    model = tmp_path / "smollm2"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "lfm.cli", "dev", "real-model", str(model)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    benchmark = _benchmark()
    pairs = benchmark.document_pairs(model, tmp_path / "run")
    result = benchmark.train_with_lfm(model, tmp_path / "run", pairs)
    before, after = result["before"], result["after"]
    assert before["pairs"] >= 20
    assert after["preference_accuracy"] > before["preference_accuracy"], result
    assert after["mean_logp_margin"] > before["mean_logp_margin"], result
    assert result["held_out_dpo_reward"]["margins"] > 0, result

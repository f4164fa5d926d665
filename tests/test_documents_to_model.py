"""Proof that it learns: the documents-to-model example end to end on the real model (slow).

SmolLM2-135M-Instruct (from its PyPI wheel, `lfm dev real-model`) is fine-tuned with LoRA on the
Q&A pairs the offline generator makes from the Python tutorial, and must beat its base on the
held-out chapters' questions: lower perplexity of the reference answers, higher ROUGE-L and
token F1 of its greedy answers (benchmarks/documents_to_model.py, which this runs).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _benchmark():
    path = REPO / "benchmarks" / "documents_to_model.py"
    spec = importlib.util.spec_from_file_location("documents_to_model", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_a_model_trained_on_documents_beats_its_base_on_held_out_chapters(tmp_path):
    pytest.importorskip("gguf")
    model = tmp_path / "smollm2"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "lfm.cli", "dev", "real-model", str(model)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    result = _benchmark().run(model, tmp_path / "run")
    assert result["pairs"]["kept"] > 100 and result["pairs"]["test"] >= 20
    assert result["held_out_questions"] == result["pairs"]["test"]
    for name, figures in result["base_vs_fine_tuned"].items():
        assert figures["better"], (name, figures)

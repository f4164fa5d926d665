"""Fixtures for the registry tests: a real PEFT adapter on the tiny model, in a real bundle."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

os.environ.setdefault("HF_HUB_OFFLINE", "1")
pytest.importorskip("semver")
pytest.importorskip("platformdirs")

REPO = Path(__file__).resolve().parents[2]

EVAL_RESULTS = {
    "evaluation_results": {
        "model_id": "medical_qa_v1.2.0",
        "timestamp": "2024-01-15T10:30:00Z",
        "benchmarks": {
            "mmlu": {"accuracy": 0.72, "improvement": "+0.05"},
            "medical_qa": {"accuracy": 0.89, "improvement": "+0.12"},
        },
        "rag_integration": {"latency_p95": "150ms"},
        "gates": [{"name": "max_perplexity", "passed": True}],
    }
}


@pytest.fixture(scope="session")
def adapter_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LoRA adapter saved by peft itself, on a tiny Llama built locally."""
    pytest.importorskip("peft")
    import torch
    from lfm.runtime.tiny import build_tiny_model
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    root = tmp_path_factory.mktemp("adapter")
    base = build_tiny_model(root / "tiny-model")
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(str(base))
    config = LoraConfig(
        task_type="CAUSAL_LM", r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]
    )
    peft_model = get_peft_model(model, config)
    peft_model.save_pretrained(str(root / "adapter"))
    return root / "adapter"


@pytest.fixture(scope="session")
def bundle_dir(tmp_path_factory: pytest.TempPathFactory, adapter_dir: Path) -> Path:
    """examples/quickstart.yaml compiled by lfm, with the adapter as its training output."""
    from lfm.cli import lfm

    bundle = tmp_path_factory.mktemp("bundle") / "quickstart"
    result = CliRunner().invoke(
        lfm, ["compile", str(REPO / "examples" / "quickstart.yaml"), "-o", str(bundle)]
    )
    assert result.exit_code == 0, result.output
    shutil.copytree(adapter_dir, bundle / "output")
    (bundle / "output" / "metrics.json").write_text(
        json.dumps({"final_loss": 1.25, "global_step": 12, "tokens_per_second": 900.0})
    )
    (bundle / "output" / "checkpoint-10").mkdir()
    (bundle / "output" / "checkpoint-10" / "optimizer.pt").write_bytes(b"resume state")
    (bundle / "output" / "wandb" / "offline-run-1").mkdir(parents=True)
    (bundle / "output" / "wandb" / "offline-run-1" / "run-1.wandb").write_bytes(b":W&B")
    (bundle / "eval_results.json").write_text(json.dumps(EVAL_RESULTS))
    return bundle


@pytest.fixture
def make_adapter_copy() -> Callable[[Path, Path, str], Path]:
    """``copy(adapter_dir, dest, salt)``: a distinct adapter, the same files with another README
    (a new version's content)."""

    def copy(adapter_dir: Path, dest: Path, salt: str) -> Path:
        shutil.copytree(adapter_dir, dest)
        (dest / "README.md").write_text(f"adapter {salt}\n")
        return dest

    return copy


@pytest.fixture
def registry_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty registry directory, chosen through LFM_REGISTRY as a user would."""
    root = tmp_path / "registry"
    monkeypatch.setenv("LFM_REGISTRY", str(root))
    monkeypatch.setenv("LFM_REGISTRY_CONFIG", str(tmp_path / "no-config.yaml"))
    monkeypatch.setenv("LFM_USER", "tester")
    return root


@pytest.fixture
def cli(registry_env: Path) -> Callable[..., Result]:
    """Run `lfm ARGS...` in-process; returns click's Result (output, exit_code)."""
    from lfm.cli import lfm

    def run(*args: str, expect: int | None = 0) -> Result:
        result = CliRunner().invoke(lfm, list(args))
        if expect is not None:
            assert result.exit_code == expect, result.output
        return result

    return run

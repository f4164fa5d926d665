"""Fixtures for the evaluation tests: a tiny local model and a LoRA adapter trained on it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[2]
QUICKSTART_DATA = REPO / "examples" / "data" / "quickstart.jsonl"
TASKS_DIR = Path(__file__).resolve().parent / "lm_eval_tasks"
ENV = {
    **os.environ,
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


def lfm_cli(*args: str, cwd: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "lfm.cli", *args], cwd=cwd, env=ENV, check=True,
        capture_output=True,
    )  # fmt: skip


def run_script(
    script: Path, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(script)], cwd=cwd, env=env or ENV, capture_output=True, text=True
    )


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread() -> Iterator[None]:
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session", autouse=True)
def _datasets_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    datasets = pytest.importorskip("datasets")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path_factory.mktemp("hf-datasets"))
        datasets.disable_progress_bars()
        yield


@pytest.fixture(scope="session")
def eval_tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("transformers")
    from lfm.runtime.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("eval-tiny") / "model")


@pytest.fixture(scope="session")
def quickstart_spec():
    from lfm.runtime.data import DatasetSpec

    return DatasetSpec(
        source_type="local",
        path=str(QUICKSTART_DATA),
        format="alpaca",
        max_length=256,
        holdout_ratio=0.1,
        seed=42,
    )


@pytest.fixture(scope="session")
def trained_adapter(
    eval_tiny_model: Path, quickstart_spec, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A LoRA adapter trained for a few dozen steps on the quickstart train split."""
    import torch
    from lfm.runtime import data, modeling
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    tokenizer = modeling.load_tokenizer(str(eval_tiny_model))
    train, _ = data.load_sft_dataset(quickstart_spec, tokenizer)
    model = modeling.load_model(str(eval_tiny_model), dtype="float32")
    model = get_peft_model(
        model,
        LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]),
    )
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    collate = data.collator(tokenizer)
    model.train()
    for step in range(24):
        rows = [train[(step * 8 + i) % len(train)] for i in range(8)]
        batch = collate(rows)
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    out = tmp_path_factory.mktemp("eval-adapter") / "adapter"
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    return out


@pytest.fixture(scope="module")
def project(tmp_path_factory, eval_tiny_model) -> Path:
    """examples/ with the tiny model in place, as a user has after the quickstart."""
    root = tmp_path_factory.mktemp("eval-project")
    shutil.copytree(
        REPO / "examples", root / "examples", ignore=shutil.ignore_patterns("tiny-model")
    )
    shutil.copytree(eval_tiny_model, root / "examples" / "tiny-model")
    return root

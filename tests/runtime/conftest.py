"""Shared fixtures for the runtime tests: tiny local models, offline hub, temp caches."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# Nothing in these tests may reach the network; set before the HF libraries are imported.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

pytest.importorskip("torch")
pytest.importorskip("transformers")


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """Tiny models run no faster on more threads, and far slower on a busy machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session", autouse=True)
def _datasets_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Keep ``datasets``' Arrow cache out of the user's home directory."""
    import datasets

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path_factory.mktemp("hf-datasets"))
        datasets.disable_progress_bars()
        yield


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from lfm.runtime.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="session")
def tiny_chat_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from lfm.runtime.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-chat") / "model", chat_template=True)


@pytest.fixture(scope="session")
def tokenizer(tiny_model_dir: Path) -> Any:
    from lfm.runtime.modeling import load_tokenizer

    return load_tokenizer(str(tiny_model_dir))


@pytest.fixture(scope="session")
def chat_tokenizer(tiny_chat_model_dir: Path) -> Any:
    from lfm.runtime.modeling import load_tokenizer

    return load_tokenizer(str(tiny_chat_model_dir))


@pytest.fixture
def write_jsonl(tmp_path: Path) -> Callable[..., Path]:
    """Return ``write(records, name="data.jsonl") -> Path`` writing JSON Lines into tmp_path."""

    def write(records: list[dict[str, Any]], name: str = "data.jsonl") -> Path:
        path = tmp_path / name
        path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
        return path

    return write


@pytest.fixture(scope="session")
def tiny_lora(tiny_model_dir: Path) -> Callable[..., Any]:
    """Return ``build(peft_config=None)``: the tiny model in fp32 with sdpa, under PEFT.

    The default is LoRA r4 with non-zero B weights (``init_lora_weights=False``), so the
    adapter changes the outputs from the first step.
    """

    def build(peft_config: Any = None) -> Any:
        import torch
        from lfm.runtime import modeling
        from peft import LoraConfig, get_peft_model

        torch.manual_seed(0)
        model = modeling.load_model(
            str(tiny_model_dir), dtype="float32", attn_implementation="sdpa"
        )
        config = peft_config or LoraConfig(
            task_type="CAUSAL_LM", r=4, lora_alpha=8, init_lora_weights=False
        )
        return get_peft_model(model, config)

    return build

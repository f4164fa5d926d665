"""A real `lfm serve` on a loopback port, and the models it serves: a tiny Llama with a chat
template, two LoRA adapters on it (random, so each answers differently), and adapters it must
refuse (another base model's, a prompt-tuning one)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
pytest.importorskip("prometheus_client")
pytest.importorskip("peft")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@dataclass(frozen=True)
class Models:
    base: Path
    one: Path  # a LoRA adapter on base
    two: Path  # another one
    foreign: Path  # a LoRA adapter on another base model
    prompt_tuning: Path  # not a LoRA adapter


def _lora(base: Path, out: Path, seed: int) -> Path:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base)
    config = LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(model, config).save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> Models:
    from lfm.runtime.tiny import build_tiny_model
    from peft import PromptTuningConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    root = tmp_path_factory.mktemp("serving")
    base = build_tiny_model(root / "tiny", chat_template=True, pretrain_steps=0)
    other = build_tiny_model(root / "other", vocab_size=300, seed=7, pretrain_steps=0)
    prompt = root / "prompt-tuning"
    get_peft_model(
        AutoModelForCausalLM.from_pretrained(base),
        PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=4),
    ).save_pretrained(prompt)
    return Models(
        base=base,
        one=_lora(base, root / "one", 1),
        two=_lora(base, root / "two", 2),
        foreign=_lora(other, root / "foreign", 3),
        prompt_tuning=prompt,
    )

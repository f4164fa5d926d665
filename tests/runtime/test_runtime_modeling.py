"""Loading the base model and tokenizer, and the errors when that is impossible."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from lfm.runtime import modeling
from lfm.runtime.errors import RuntimeConfigError


def test_tokenizer_is_ready_for_training(tiny_model_dir: Path) -> None:
    bundle = tiny_model_dir.parent / "bundle"
    tokenizer = modeling.load_tokenizer("../model", base_dir=bundle)
    assert tokenizer.pad_token == "<pad>"
    assert tokenizer.padding_side == "right"


def test_missing_pad_falls_back_to_eos(tiny_model_dir: Path, tmp_path: Path) -> None:
    tokenizer = modeling.load_tokenizer(str(tiny_model_dir))
    tokenizer.pad_token = None
    tokenizer.save_pretrained(tmp_path)
    assert modeling.load_tokenizer(str(tmp_path)).pad_token == "</s>"


def test_missing_local_path_suggests_tiny_model(tmp_path: Path) -> None:
    with pytest.raises(RuntimeConfigError, match=r"missing does not exist.*lfm dev tiny-model DIR"):
        modeling.load_tokenizer("./missing", base_dir=tmp_path)
    with pytest.raises(RuntimeConfigError, match="lfm dev tiny-model DIR"):
        modeling.load_model("./missing", base_dir=tmp_path)


def test_local_dir_without_a_model(tmp_path: Path) -> None:
    with pytest.raises(RuntimeConfigError, match="could not load a model from"):
        modeling.load_model(str(tmp_path))


def test_unreachable_hub_id_explains_offline_options(monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants

    # Offline mode fails fast instead of retrying DNS lookups for ~50 s.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(RuntimeConfigError, match=r"hub id 'someorg/no-model'.*HF_HUB_OFFLINE"):
        modeling.load_tokenizer("someorg/no-model")
    with pytest.raises(RuntimeConfigError, match=r"hub id 'someorg/no-model'"):
        modeling.load_model("someorg/no-model")


@pytest.mark.parametrize(
    ("dtype", "expected"), [("float32", torch.float32), ("bfloat16", torch.bfloat16)]
)
def test_model_dtype(tiny_model_dir: Path, dtype: str, expected: torch.dtype) -> None:
    model = modeling.load_model(str(tiny_model_dir), dtype=dtype)
    assert next(model.parameters()).dtype == expected


def test_unknown_dtype(tiny_model_dir: Path) -> None:
    with pytest.raises(RuntimeConfigError, match="dtype 'fp8' is not supported"):
        modeling.load_model(str(tiny_model_dir), dtype="fp8")


def test_gradient_checkpointing_works_with_peft(tiny_model_dir: Path) -> None:
    from peft import LoraConfig, get_peft_model

    model = modeling.load_model(str(tiny_model_dir), dtype="float32", gradient_checkpointing=True)
    layers = [m for m in model.modules() if hasattr(m, "gradient_checkpointing")]
    assert layers and all(m.gradient_checkpointing for m in layers)
    assert model.config.use_cache is False
    model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", r=4, target_modules=["q_proj"]))
    model.train()
    ids = torch.tensor([[1, 5, 6, 7, 8]])
    model(input_ids=ids, labels=ids).loss.backward()
    lora = [p for n, p in model.named_parameters() if "lora_B" in n]
    assert lora and all(p.grad is not None for p in lora)


def test_a_missing_target_module_is_named_with_the_closest_real_one(tiny_model_dir) -> None:
    from peft import LoraConfig

    model = modeling.load_model(str(tiny_model_dir), dtype="float32")
    modeling.check_target_modules(model, LoraConfig(target_modules=["q_proj", "v_proj"]))
    modeling.check_target_modules(model, LoraConfig(target_modules="all-linear"))
    with pytest.raises(
        RuntimeConfigError, match="'q_projj' matches no module.*did you mean 'q_proj'"
    ):
        modeling.check_target_modules(model, LoraConfig(target_modules=["q_projj"]))

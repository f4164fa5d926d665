"""The emitted TrainingArguments(...) call, built by transformers itself, agrees with
ds_config.json (the HF Trainer's own consistency check) and turns into FSDP plugin settings."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from lfm.compiler.pipeline import compile_config

pytest.importorskip("transformers")
pytest.importorskip("deepspeed")

BASE = "model_config:\n  base_model: meta-llama/Llama-3.1-8B\n"


def emitted_arguments(files: dict[str, str], bundle: Path) -> dict:
    """TrainingArguments' keywords as train.py writes them; run-time expressions filled in."""
    tree = ast.parse(files["train.py"])
    [call] = [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "TrainingArguments"
    ]
    runtime = {
        "output_dir": str(bundle / "output"),
        "deepspeed": str(bundle / "ds_config.json"),
        "accelerator_config": None,
        "use_cpu": True,
    }
    kwargs = {}
    for keyword in call.keywords:
        if keyword.arg in runtime:
            kwargs[keyword.arg] = runtime[keyword.arg]
        elif keyword.arg in ("bf16", "fp16"):
            continue  # chosen at run time from the precision; set below from the config
        else:
            kwargs[keyword.arg] = ast.literal_eval(keyword.value)
    return kwargs


def build(write_config, tmp_path, text: str):
    from transformers import TrainingArguments

    files = compile_config(write_config(BASE + text), "bundle").files
    bundle = tmp_path / "bundle"
    bundle.mkdir(exist_ok=True)
    if "ds_config.json" in files:
        (bundle / "ds_config.json").write_text(files["ds_config.json"])
    kwargs = emitted_arguments(files, bundle)
    return files, TrainingArguments(**kwargs)


@pytest.mark.parametrize(
    "distributed",
    [
        "{strategy: deepspeed_zero1}",
        "{strategy: deepspeed_zero2, offload_optimizer: true}",
        "{strategy: deepspeed_zero3, offload_optimizer: true, offload_parameters: true}",
    ],
)
def test_the_trainer_finds_no_mismatch_with_ds_config(write_config, tmp_path, distributed):
    files, args = build(
        write_config,
        tmp_path,
        "  fine_tuning: {training: {precision: fp32, batch_size: 2, gradient_accumulation_steps: 3,"
        " learning_rate: 3.0e-5, weight_decay: 0.01, max_grad_norm: 0.7}}\n"
        f"  distributed: {distributed}\n",
    )
    # Filled from TrainingArguments when it was built; the Trainer raises on any of these.
    assert args.hf_deepspeed_config.mismatches == []
    ds = json.loads(files["ds_config.json"])
    assert ds["train_batch_size"] == args.world_size * 2 * 3


def test_a_changed_value_is_caught_by_the_trainer(write_config, tmp_path):
    """The check is real: edit ds_config.json by hand and the Trainer's check names it."""
    from transformers import TrainingArguments

    files = compile_config(
        write_config(BASE + "  distributed: {strategy: deepspeed_zero2}\n"), "bundle"
    ).files
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    ds = json.loads(files["ds_config.json"])
    ds["gradient_accumulation_steps"] += 1
    (bundle / "ds_config.json").write_text(json.dumps(ds))
    args = TrainingArguments(**emitted_arguments(files, bundle))
    assert any("gradient_accumulation_steps" in m for m in args.hf_deepspeed_config.mismatches)


@pytest.mark.parametrize(
    ("fsdp", "reshard", "state_dict"),
    [
        ("{}", True, "FULL_STATE_DICT"),
        ("{sharding: shard_grad_op, state_dict: sharded}", False, "SHARDED_STATE_DICT"),
    ],
)
def test_fsdp_settings_reach_accelerates_plugin(write_config, tmp_path, fsdp, reshard, state_dict):
    _, args = build(
        write_config,
        tmp_path,
        "  fine_tuning: {method: full, training: {precision: fp32, gradient_checkpointing: true}}\n"
        f"  distributed: {{strategy: fsdp, gpus: 2, fsdp: {fsdp}}}\n",
    )
    plugin = args.fsdp_plugin_args
    assert plugin["fsdp_version"] == 2
    assert plugin["transformer_cls_names_to_wrap"] == "LlamaDecoderLayer"
    assert plugin["reshard_after_forward"] is reshard
    assert plugin["state_dict_type"] == state_dict
    assert args.gradient_checkpointing_kwargs == {"use_reentrant": False}

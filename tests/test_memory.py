"""The memory estimate: the model's size from its config, the accounting, and the rules it drives."""

from pathlib import Path

import pytest
from lfm.compiler.diagnostics import CompileError
from lfm.compiler.memory import KNOWN_MODELS, Run, estimate, shape_from_config
from lfm.compiler.pipeline import analyze

LLAMA_7B = KNOWN_MODELS["meta-llama/llama-2-7b-hf"]


def run(method: str, checkpointing: bool = True, batch: int = 4) -> Run:
    return Run(method, True, batch, 2048, checkpointing, "adamw_torch", 16, 2)


def test_estimates_fall_in_the_ranges_people_measure_for_a_7b_model():
    # Public measurements for Llama-2-7B at 2k tokens: LoRA ~15-20 GiB with checkpointing,
    # QLoRA ~6-10 GiB, full fine-tuning with AdamW over 100 GiB (16 bytes per parameter).
    assert 12 < estimate(LLAMA_7B, run("lora")).total_gib < 22
    assert 5 < estimate(LLAMA_7B, run("qlora")).total_gib < 11
    assert estimate(LLAMA_7B, run("full")).total_gib > 100
    assert estimate(LLAMA_7B, run("lora", checkpointing=False)).total_gib > 40


@pytest.mark.parametrize(
    "fields",
    [
        {
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "vocab_size": 512,
        },
        {
            "hidden_size": 512,
            "intermediate_size": 1376,
            "num_hidden_layers": 6,
            "num_attention_heads": 8,
            "num_key_value_heads": 8,
            "vocab_size": 8000,
        },
    ],
)
def test_parameter_count_from_config_matches_the_real_model(fields):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(**fields, tie_word_embeddings=False)
    with torch.device("meta"):
        real = LlamaForCausalLM(config).num_parameters()
    shape = shape_from_config({**config.to_dict(), "model_type": "llama"})
    assert shape is not None and abs(shape.parameters - real) / real < 0.01


def config(extra: str, base: str = "meta-llama/Llama-2-7b-hf") -> str:
    return f"model_config:\n  base_model: {base}\n  dataset: {{source: {{type: hub, path: a/b}}}}\n{extra}"


def decisions(write_config, text):
    analysis = analyze(write_config(text))
    return analysis, {d.path: d for d in analysis.resolved.decisions}


def test_a_small_gpu_turns_on_checkpointing_and_splits_the_batch(write_config):
    analysis, d = decisions(
        write_config,
        config("  resources: {gpu: 1x_a10g}\n  fine_tuning: {training: {batch_size: 8}}\n"),
    )
    assert d["model_config.fine_tuning.training.gradient_checkpointing"].value is True
    assert d["model_config.fine_tuning.training.gradient_checkpointing"].rule == "fit_memory"
    batch = d["model_config.fine_tuning.training.batch_size"].value
    accumulation = d["model_config.fine_tuning.training.gradient_accumulation_steps"].value
    assert batch * accumulation == 8 and batch < 8
    assert analysis.resolved.derived["memory_estimate_gib"] < 24 * 0.9


def test_without_a_declared_gpu_nothing_changes_but_the_estimate_is_shown(write_config):
    analysis, d = decisions(write_config, config(""))
    assert d["model_config.fine_tuning.training.gradient_checkpointing"].rule == "default"
    assert analysis.resolved.derived["memory_by_method_gib"]["full"] > 100


def test_a_job_that_cannot_fit_is_a_warning(write_config):
    analysis, _ = decisions(
        write_config, config("  resources: {gpu_memory_gb: 24}\n  fine_tuning: {method: full}\n")
    )
    assert any("exceeds 21.6 GiB (90% of 24 GiB" in w.message for w in analysis.diagnostics)


@pytest.mark.parametrize(
    ("base", "gpu", "method"),
    [
        (
            "meta-llama/Llama-2-7b-hf",
            "t4",
            "qlora",
        ),  # LoRA's 13.5 GB of bf16 weights do not fit 16 GB
        ("meta-llama/Llama-2-7b-hf", "a100", "lora"),
        ("meta-llama/Llama-2-70b-hf", "h100", "qlora"),
    ],
)
def test_method_auto_checks_the_tree_against_the_estimate(write_config, base, gpu, method):
    _, d = decisions(
        write_config,
        config(f"  resources: {{gpu: {gpu}}}\n  fine_tuning: {{method: auto}}\n", base=base),
    )
    assert d["model_config.fine_tuning.method"].value == method


def test_a_local_models_files_never_change_the_bundle(write_config, tmp_path: Path):
    text = config("  resources: {gpu_memory_gb: 1}\n", base="./m")
    without = analyze(write_config(text)).resolved.decisions
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text(
        '{"model_type": "llama", "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,'
        ' "num_attention_heads": 32, "vocab_size": 32000}'
    )
    assert analyze(write_config(text)).resolved.decisions == without


def test_bad_resources_are_schema_errors(write_config):
    with pytest.raises(CompileError, match="must be > 0"):
        analyze(write_config(config("  resources: {gpu_memory_gb: 0}\n")))


@pytest.mark.parametrize(
    ("extra", "method", "branch"),
    [
        (
            "  resources: {gpu_memory_gb: 22}\n",
            "lora",
            "limited GPU memory (<24 GB) and a model of 13B or less",
        ),
        (
            "  resources: {gpu: 1x_t4}\n",
            "qlora",
            "limited GPU memory",
        ),  # and LoRA does not fit 16 GB
        (
            "  fine_tuning: {method: auto, selection: {domains: 3, switching: frequent}}\n",
            "adapters",
            "switched often",
        ),
        ("  fine_tuning: {method: auto, selection: {domains: 3}}\n", "lora", "multi-LoRA"),
        (
            "  fine_tuning: {method: auto, selection: {priority: quality, dataset_size: 500000}}\n",
            "full",
            "large dataset",
        ),
        (
            "  fine_tuning: {method: auto, selection: {priority: quality, dataset_size: 2000}}\n",
            "lora",
            "without a large dataset",
        ),
        ("  deployment: {target: kubernetes}\n", "lora", "merged LoRA"),
        ("", "lora", "general-purpose default"),
    ],
)
def test_each_branch_of_the_seed_decision_tree(write_config, extra, method, branch):
    text = config(extra if "fine_tuning" in extra else f"  fine_tuning: {{method: auto}}\n{extra}")
    analysis, d = decisions(write_config, text)
    decision = d["model_config.fine_tuning.method"]
    assert decision.value == method and branch in decision.reason, decision.reason
    if "dataset_size: 2000" in extra:
        assert d["model_config.fine_tuning.parameters.r"].value == 64
    if "kubernetes" in extra:
        assert d["model_config.fine_tuning.parameters.merge_on_save"].value is True


def test_full_fine_tuning_falls_back_to_lora_when_it_cannot_fit(write_config):
    text = config(
        "  resources: {gpu: a100}\n"
        "  fine_tuning: {method: auto, selection: {priority: quality, dataset_size: 500000}}\n"
    )
    _, d = decisions(write_config, text)
    assert d["model_config.fine_tuning.method"].value == "lora"
    assert "so lora" in d["model_config.fine_tuning.method"].reason


def test_zero3_shards_the_training_state_across_gpus():
    alone = estimate(LLAMA_7B, run("full"))
    sharded = estimate(
        LLAMA_7B,
        Run("full", True, 4, 2048, True, "adamw_torch", world=8, sharding="deepspeed_zero3"),
    )
    assert sharded.weights == pytest.approx(alone.weights / 8)
    assert sharded.optimizer == pytest.approx(alone.optimizer / 8)
    assert sharded.total_gib < 40 < alone.total_gib


def test_auto_steps_down_until_something_fits(write_config):
    text = config(
        "  resources: {gpu_memory_gb: 30}\n"
        "  fine_tuning: {method: auto, selection: {priority: quality, dataset_size: 500000}}\n",
        base="meta-llama/Llama-2-13b-hf",
    )
    _, d = decisions(write_config, text)
    assert d["model_config.fine_tuning.method"].value == "qlora"
    assert (
        "so lora" in d["model_config.fine_tuning.method"].reason
        and "so qlora" in d["model_config.fine_tuning.method"].reason
    )

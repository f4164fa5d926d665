"""The compiler side: the `evaluation` block -> evaluate.py, its rules and its requirements."""

from __future__ import annotations

import ast

import pytest
from lfm.compiler.diagnostics import CompileError
from lfm.compiler.pipeline import analyze, compile_config

BASE = """\
model_config:
  name: ev
  base_model: ./model
  dataset:
    source: {type: local, path: ./train.jsonl}
    validation: {split_ratio: 0.1}
"""


def _compile(write_config, extra: str = ""):
    return compile_config(write_config(BASE + extra), "build/ev").files


def _errors(write_config, extra: str) -> str:
    with pytest.raises(CompileError) as error:
        analyze(write_config(BASE + extra))
    return "\n".join(d.format() for d in error.value.diagnostics)


def test_no_evaluation_block_no_evaluate_py(write_config):
    files = _compile(write_config)
    assert "evaluate.py" not in files
    assert "lm-eval" not in files["requirements.txt"]
    assert "evaluate.py" not in files["train.py"]


def test_an_evaluation_block_emits_a_valid_evaluate_py(write_config):
    files = _compile(
        write_config,
        "  evaluation:\n"
        "    metrics: [perplexity, rouge]\n"
        "    benchmarks: [hellaswag]\n"
        "    custom_evaluations: [domain_qa, ./qa/other.jsonl]\n"
        "    generation: {max_new_tokens: 32}\n"
        "    gates: {max_perplexity: 20, max_regression: {hellaswag: 0.02}}\n",
    )
    script = files["evaluate.py"]
    ast.parse(script)
    assert 'metrics=["perplexity", "rouge"]' in script
    assert "max_new_tokens=32," in script and "do_sample=False," in script
    assert 'name="domain_qa"' in script and '"../../evaluations/domain_qa.jsonl"' in script
    assert 'name="other"' in script
    assert 'max_regression={"hellaswag": 0.02}' in script
    assert "base = evaluation.score_model(BASE_MODEL" in script  # compare_with_base default
    for package in ("lm-eval==", "sacrebleu==", "rouge-score==", "matplotlib=="):
        assert package in files["requirements.txt"]
    assert "evaluate.py" not in files["train.py"]  # run_after_training is off by default


def test_run_after_training_adds_the_hook_to_train_py(write_config):
    files = _compile(write_config, "  evaluation: {run_after_training: true}\n")
    train = files["train.py"]
    ast.parse(train)
    assert 'run_after_training(BUNDLE_DIR / "evaluate.py")' in train


def _quantization_block(script: str) -> str:
    start = script.index("quantization_config = BitsAndBytesConfig(")
    return "\n".join(
        line.strip() for line in script[start : script.index(")\n", start)].splitlines()
    )


def test_qlora_evaluates_on_the_base_quantized_as_train_py_quantizes_it(write_config):
    files = _compile(
        write_config, "  fine_tuning: {method: qlora}\n  evaluation: {metrics: [perplexity]}\n"
    )
    script = files["evaluate.py"]
    ast.parse(script)
    assert _quantization_block(script) == _quantization_block(files["train.py"])
    assert "bf16, fp16 = training.choose_precision(" in script
    assert "quantization_config=quantization_config," in script
    lora = _compile(write_config, "  evaluation: {metrics: [perplexity]}\n")["evaluate.py"]
    assert "BitsAndBytesConfig" not in lora and "quantization_config" not in lora


def test_hybrid_methods_evaluate_every_adapter(write_config):
    files = _compile(
        write_config,
        "  fine_tuning:\n    method: hybrid_lora_adapter\n"
        "    parameters: {target_modules: [q_proj], adapter_type: oft}\n"
        "  evaluation: {metrics: [perplexity]}\n",
    )
    script = files["evaluate.py"]
    ast.parse(script)
    assert '"lora": OUTPUT_DIR / "lora",' in script and '"oft": OUTPUT_DIR / "oft",' in script
    assert "for name, adapter_dir in ADAPTER_DIRS.items()" in script
    assert "MODEL_DIR" not in script


def test_evaluation_is_no_longer_reported_as_unused(write_config):
    analysis = analyze(write_config(BASE + "  evaluation: {metrics: [perplexity]}\n"))
    assert not any("evaluation is recorded" in d.message for d in analysis.diagnostics)
    assert analysis.resolved.derived["evaluation"] is True


def test_a_gate_on_a_score_not_measured_suggests_the_closest(write_config):
    found = _errors(
        write_config,
        "  evaluation:\n    metrics: [rouge]\n    gates: {min_scores: {rouge_l: 0.3}}\n",
    )
    assert "gate min_scores.rouge_l: no score named 'rouge_l' is measured" in found
    assert "did you mean 'rougeL'?" in found


def test_comparison_gates_need_the_base_model(write_config):
    found = _errors(
        write_config,
        "  evaluation:\n    compare_with_base: false\n    gates: {min_improvement: {perplexity: 1}}\n",
    )
    assert "compare_with_base is false" in found


def test_max_perplexity_needs_perplexity(write_config):
    found = _errors(
        write_config, "  evaluation:\n    metrics: [f1]\n    gates: {max_perplexity: 9}\n"
    )
    assert "max_perplexity gate needs perplexity" in found


def test_metrics_need_data_to_score(write_config):
    text = BASE.replace("split_ratio: 0.1", "split_ratio: 0") + "  evaluation: {metrics: [f1]}\n"
    with pytest.raises(CompileError, match="split_ratio is 0 and evaluation.test_set is not set"):
        analyze(write_config(text))
    files = compile_config(
        write_config(text.replace("{metrics: [f1]}", "{metrics: [f1], test_set: ./t.jsonl}")),
        "build/ev",
    ).files
    assert 'evalset = evaluation.file_set(\n        "../../t.jsonl"' in files["evaluate.py"]


@pytest.mark.parametrize("hostile", ['x"]); import os; os.system("id")  #', "a\nb", "\\'\u2028"])
def test_hostile_names_stay_string_literals(write_config, hostile):
    import json

    extra = f"  evaluation:\n    benchmarks: [{json.dumps(hostile)}]\n"
    script = _compile(write_config, extra)["evaluate.py"]
    tree = ast.parse(script)
    literals = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)]
    assert hostile in literals
    assert "os.system" not in [ast.unparse(n) for n in ast.walk(tree) if isinstance(n, ast.Call)]

"""Preference objectives at compile time: TRL's config and trainer by their own names, every
value written out, each default explained. The bad combinations with their exact messages are
in tests/bad_configs/preference_*.yaml."""

from __future__ import annotations

import ast

import pytest
from lfm.compiler.diagnostics import CompileError
from lfm.compiler.pipeline import analyze, compile_config

BASE = """\
model_config:
  name: aligned
  base_model: ./model
  fine_tuning:
    method: {method}
    objective: {objective}
{preference}  dataset:
    source: {{type: local, path: ./pairs.jsonl}}
    preprocessing: {{format: {format}, max_length: 512}}
    validation: {{split_ratio: 0.1}}
"""


def config(objective: str, method: str = "lora", preference: str = "", fmt: str = "auto") -> str:
    block = f"    preference: {{{preference}}}\n" if preference else ""
    return BASE.format(objective=objective, method=method, preference=block, format=fmt)


def calls(train_py: str) -> dict[str, dict[str, object]]:
    """Every call in train.py by its callee's name, with its literal keyword arguments."""
    found: dict[str, dict[str, object]] = {}
    for node in ast.walk(ast.parse(train_py)):
        if isinstance(node, ast.Call):
            name = ast.unparse(node.func)
            found[name] = {k.arg: _literal(k.value) for k in node.keywords if k.arg}
    return found


def _literal(node: ast.expr) -> object:
    try:
        return ast.literal_eval(node)
    except ValueError:
        return ast.unparse(node)  # a name or a call: its source


def test_sft_stays_as_it_was(write_config) -> None:
    files = compile_config(write_config(config("sft", fmt="alpaca")), "b").files
    assert "TrainingArguments(" in files["train.py"] and "import trl" not in files["train.py"]
    assert "from trl" not in files["train.py"] and "preference." not in files["train.py"]
    assert "trl==" not in files["requirements.txt"]
    assert '"preference"' not in files["lfm.lock.json"]


@pytest.mark.parametrize(
    ("objective", "module", "config_class", "trainer", "settings"),
    [
        ("dpo", "trl", "DPOConfig", "DPOTrainer",
         {"beta": 0.1, "loss_type": ["sigmoid"], "label_smoothing": 0.0}),
        ("kto", "trl", "KTOConfig", "KTOTrainer",
         {"beta": 0.1, "loss_type": "kto", "desirable_weight": 1.0, "undesirable_weight": 1.0}),
        ("orpo", "trl.experimental.orpo", "ORPOConfig", "ORPOTrainer", {"beta": 0.1}),
        ("simpo", "trl.experimental.cpo", "CPOConfig", "CPOTrainer",
         {"beta": 2.0, "loss_type": "simpo", "simpo_gamma": 0.5, "cpo_alpha": 0.0}),
    ],
)  # fmt: skip
def test_each_objective_calls_trl_by_its_names(
    write_config, objective, module, config_class, trainer, settings
) -> None:
    files = compile_config(write_config(config(objective)), "b").files
    train_py = files["train.py"]
    assert f"from {module} import {config_class}\n" in train_py
    found = calls(train_py)
    args = found[config_class]
    assert {k: args[k] for k in settings} == settings
    assert args["max_length"] == 512 and args["remove_unused_columns"] is False
    assert f"preference.{trainer}" in found
    assert found["preference.load_pairs"]["paired"] is (objective != "kto")
    assert "data.collator" not in train_py  # TRL pads its own batches
    assert files["requirements.txt"].count("trl==") == 1


def test_defaults_are_explained_and_the_reference_follows_the_method(write_config) -> None:
    resolved = analyze(write_config(config("dpo"))).resolved
    decided = {d.path: d for d in resolved.decisions}
    beta = decided["model_config.fine_tuning.preference.beta"]
    assert beta.value == 0.1 and beta.rule == "preference_objective" and "reference" in beta.reason
    packing = decided["model_config.fine_tuning.training.packing"]
    assert packing.value is False and packing.rule == "preference_objective"
    assert resolved.derived["preference_reference"] == "adapter_disabled"
    full = analyze(write_config(config("dpo", method="full"), "full.yaml")).resolved
    assert full.derived["preference_reference"] == "frozen_copy"
    orpo = analyze(write_config(config("orpo"), "orpo.yaml")).resolved
    assert orpo.derived["preference_reference"] == "none"


def test_written_settings_win(write_config) -> None:
    text = config("dpo", preference="beta: 0.3, loss_type: ipo")
    args = calls(compile_config(write_config(text), "b").files["train.py"])["DPOConfig"]
    assert args["beta"] == 0.3 and args["loss_type"] == ["ipo"]


def test_qlora_and_dora_combine(write_config) -> None:
    for method in ("qlora", "dora"):
        files = compile_config(write_config(config("kto", method=method), f"{method}.yaml"), "b")
        assert "preference.KTOTrainer(" in files.files["train.py"]


def test_a_preference_objective_for_an_embedding_task_is_refused(write_config) -> None:
    text = config("dpo").replace("  fine_tuning:", "  task: embedding\n  fine_tuning:")
    with pytest.raises(CompileError) as caught:
        analyze(write_config(text))
    messages = [d.message for d in caught.value.diagnostics if d.level == "error"]
    assert any("task: embedding trains an encoder" in m for m in messages), messages


def test_preference_settings_without_an_objective_are_ignored_with_a_warning(write_config) -> None:
    text = config("sft", preference="beta: 0.2", fmt="alpaca")
    analysis = analyze(write_config(text))
    warnings = [d.message for d in analysis.diagnostics if d.level == "warning"]
    assert any("objective sft ignores them" in w for w in warnings), warnings
    assert "preference" not in analysis.resolved.config["fine_tuning"]


def test_label_smoothing_a_loss_does_not_read_is_a_warning(write_config) -> None:
    text = config("dpo", preference="loss_type: hinge, label_smoothing: 0.1")
    warnings = [d.message for d in analyze(write_config(text)).diagnostics if d.level == "warning"]
    assert any("loss_type hinge does not read label_smoothing" in w for w in warnings), warnings
    robust = config("dpo", preference="loss_type: robust, label_smoothing: 0.1")
    quiet = analyze(write_config(robust, "robust.yaml")).diagnostics
    assert not any("label_smoothing" in d.message for d in quiet)


def _errors(write_config, text: str, name: str) -> list[str]:
    with pytest.raises(CompileError) as caught:
        analyze(write_config(text, name))
    return [d.message for d in caught.value.diagnostics if d.level == "error"]


def test_evaluate_py_scores_the_held_out_pairs_and_gates_name_their_scores(write_config) -> None:
    text = config("dpo") + (
        "  evaluation:\n"
        "    gates: {min_scores: {preference_accuracy: 0.6}, "
        "min_improvement: {mean_logp_margin: 0.0}}\n"
    )
    analysis = analyze(write_config(text))
    decided = {d.path: d for d in analysis.resolved.decisions}
    metrics = decided["model_config.evaluation.metrics"]
    assert metrics.value == [] and "preference records" in metrics.reason  # no perplexity
    evaluate_py = compile_config(write_config(text), "b").files["evaluate.py"]
    found = calls(evaluate_py)
    spec = found["evaluation.held_out_pair_set"]
    assert spec["max_length"] == 512 and spec["base_dir"] == "BUNDLE_DIR"
    pair_call = next(
        node
        for node in ast.walk(ast.parse(evaluate_py))
        if isinstance(node, ast.Call) and ast.unparse(node.func) == "evaluation.held_out_pair_set"
    )
    pair_spec = calls(ast.unparse(pair_call.args[0]))["data.DatasetSpec"]
    train_spec = calls(compile_config(write_config(text), "c").files["train.py"])
    assert pair_spec == train_spec["data.DatasetSpec"]  # the records and split train.py used
    assert found["evaluation.EvalPlan"]["pairs"] == "pairs"
    assert found["evaluation.EvalPlan"]["metrics"] == []
    assert found["evaluation.Gates"]["min_scores"] == {"preference_accuracy": 0.6}
    assert "evaluation.holdout_set" not in found  # the SFT holdout reader never sees pairs


def test_a_test_set_keeps_its_metrics_beside_the_pairs(write_config) -> None:
    text = config("dpo") + (
        "  evaluation:\n    test_set: ./qa.jsonl\n    metrics: [perplexity, f1]\n"
        "    gates: {max_perplexity: 50, min_scores: {preference_accuracy: 0.5}}\n"
    )
    found = calls(compile_config(write_config(text), "b").files["evaluate.py"])
    assert found["evaluation.EvalPlan"]["metrics"] == ["perplexity", "f1"]
    assert "evaluation.file_set" in found and "evaluation.held_out_pair_set" in found


def test_an_evaluation_with_nothing_to_score_is_refused(write_config) -> None:
    no_split = config("dpo").replace("split_ratio: 0.1", "split_ratio: 0")
    errors = _errors(write_config, no_split + "  evaluation: {}\n", "split.yaml")
    assert any("nothing to score" in e and "split_ratio is 0" in e for e in errors), errors
    metrics = config("dpo") + "  evaluation: {metrics: [perplexity]}\n"
    errors = _errors(write_config, metrics, "metrics.yaml")
    assert any("perplexity score answers to questions" in e for e in errors), errors
    # KTO's unpaired records hold out no pairs: benchmarks are still something to score.
    kto = config("kto", fmt="unpaired_preference") + "  evaluation: {}\n"
    errors = _errors(write_config, kto, "kto.yaml")
    assert any("unpaired_preference records hold out no pairs" in e for e in errors), errors
    with_benchmark = kto.replace("evaluation: {}", "evaluation: {benchmarks: [hellaswag]}")
    compiled = compile_config(write_config(with_benchmark, "kto2.yaml"), "b").files
    assert "held_out_pair_set" not in compiled["evaluate.py"]
    assert "from lfm.runtime import evaluation, training" in compiled["evaluate.py"]  # no data


def test_kto_with_format_auto_and_an_evaluation_names_the_format(write_config) -> None:
    """Whether KTO's records are pairs (some held out to score) or unpaired (none) is known
    only once the data is read: an evaluation block needs the format written."""
    errors = _errors(write_config, config("kto") + "  evaluation: {}\n", "kto.yaml")
    assert any("with format auto, which kind this data holds" in e for e in errors), errors
    trains = compile_config(write_config(config("kto"), "kto2.yaml"), "b").files  # no evaluation
    assert "evaluate.py" not in trains
    paired = config("kto", fmt="preference") + "  evaluation: {}\n"
    found = calls(compile_config(write_config(paired, "kto3.yaml"), "c").files["evaluate.py"])
    assert "evaluation.held_out_pair_set" in found

"""`lfm evaluate`: metrics on a file, comparison with the base or another model, gates, errors."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

pytest.importorskip("peft")
pytest.importorskip("sacrebleu")

from conftest import QUICKSTART_DATA, TASKS_DIR  # noqa: E402
from lfm.cli import lfm  # noqa: E402
from lfm.cli.evaluate import METRIC_NAMES  # noqa: E402


def _run(*args: str):
    return CliRunner().invoke(lfm, ["evaluate", *args], catch_exceptions=False)


def test_the_cli_metric_list_is_the_runtime_one():
    from lfm.runtime.evaluation.scoring import METRICS

    assert METRIC_NAMES == METRICS


def test_compare_with_base_writes_results_report_and_passes_gates(trained_adapter, tmp_path):
    out = tmp_path / "eval"
    result = _run(
        "--model", str(trained_adapter), "--dataset", str(QUICKSTART_DATA),
        "--metrics", "perplexity,rouge", "--limit", "4", "--max-new-tokens", "4",
        "--compare-base", "--min-improvement", "perplexity=0", "-o", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "gate min_improvement.perplexity passed" in result.output
    payload = json.loads((out / "eval_results.json").read_text())["evaluation_results"]
    assert payload["metrics"]["perplexity"]["value"] < payload["metrics"]["perplexity"]["base"]
    assert payload["datasets"][0]["examples"] == 4 and payload["passed"] is True
    assert (out / "eval_report.md").exists() and (out / "eval_comparison.png").exists()


def test_a_failing_gate_exits_non_zero_naming_gate_value_and_bound(trained_adapter, tmp_path):
    result = _run(
        "--model", str(trained_adapter), "--dataset", str(QUICKSTART_DATA), "--limit", "2",
        "--max-perplexity", "1.0", "-o", str(tmp_path / "e"),
    )  # fmt: skip
    assert result.exit_code == 1
    assert "gate max_perplexity FAILED: " in result.output and "> 1" in result.output


def test_compare_two_models_side_by_side(trained_adapter, eval_tiny_model, tmp_path):
    result = _run(
        "--model", str(trained_adapter), "--compare", str(eval_tiny_model),
        "--benchmark", "lfm_tiny_choice", "--tasks-dir", str(TASKS_DIR), "--limit", "3",
        "-o", str(tmp_path / "cmp"),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "lfm_tiny_choice" in result.output and "improvement" in result.output
    payload = json.loads((tmp_path / "cmp" / "eval_results.json").read_text())
    bench = payload["evaluation_results"]["benchmarks"]["lfm_tiny_choice"]
    assert {"accuracy", "base", "improvement"} <= set(bench)


def test_a_missing_benchmark_dataset_is_one_clear_line(eval_tiny_model, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result = _run("--model", str(eval_tiny_model), "--benchmark", "hellaswag", "-o", str(tmp_path))
    assert result.exit_code == 1
    assert "evaluation.benchmarks 'hellaswag': its dataset 'Rowan/hellaswag'" in result.output
    assert "Traceback" not in result.output


def test_nothing_to_evaluate_is_a_usage_error():
    result = _run("--model", "m")
    assert result.exit_code == 2 and "give --dataset" in result.output


def test_a_qlora_bundles_output_warns_that_its_base_loads_at_full_precision(
    trained_adapter, tmp_path
):
    import shutil

    bundle = tmp_path / "bundle"
    shutil.copytree(trained_adapter, bundle / "output")
    lock = {"model_config": {"fine_tuning": {"method": "qlora"}}}
    (bundle / "lfm.lock.json").write_text(json.dumps(lock))
    args = ("--dataset", str(QUICKSTART_DATA), "--limit", "2", "-o", str(tmp_path / "e"))
    result = _run("--model", str(bundle / "output"), *args)
    assert result.exit_code == 0, result.output
    assert "trained with QLoRA on a 4-bit base" in result.output
    assert "run its bundle's evaluate.py" in result.output
    lock["model_config"]["fine_tuning"]["method"] = "lora"
    (bundle / "lfm.lock.json").write_text(json.dumps(lock))
    assert "QLoRA" not in _run("--model", str(bundle / "output"), *args).output

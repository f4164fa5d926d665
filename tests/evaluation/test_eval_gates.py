"""eval_results.json's shape, improvements against the base, and quality gates."""

from __future__ import annotations

import json

import pytest
from lfm.runtime.errors import RuntimeConfigError
from lfm.runtime.evaluation import gates, report, results


def _results(tuned_metrics, base_metrics=None, tuned_bench=None, base_bench=None):
    tuned = results.ModelScores("out", dict(tuned_metrics), dict(tuned_bench or {}))
    base = (
        results.ModelScores("base", dict(base_metrics), dict(base_bench or {}))
        if base_metrics is not None
        else None
    )
    return results.build(
        "m_v1.0.0",
        tuned,
        base,
        base_model="base",
        settings={},
        datasets=[
            {
                "name": "holdout",
                "source": "d",
                "sha256": "0" * 64,
                "split": "holdout",
                "examples": 3,
            }
        ],
    )


def test_results_follow_the_seed_shape_with_signed_improvements():
    payload = _results(
        {"perplexity": 8.0, "rougeL": 0.30, "latency_p95_ms": 150.0},
        {"perplexity": 12.0, "rougeL": 0.25, "latency_p95_ms": 140.0},
        {"hellaswag": {"accuracy": 0.68, "acc": 0.68}},
        {"hellaswag": {"accuracy": 0.66, "acc": 0.66}},
    )
    assert payload["model_id"] == "m_v1.0.0" and payload["timestamp"].endswith("Z")
    # Positive is better: perplexity fell by 4, latency rose by 10 ms.
    assert payload["metrics"]["perplexity"] == {
        "value": 8.0,
        "base": 12.0,
        "improvement": "+4.0000",
    }
    assert payload["metrics"]["latency_p95_ms"]["improvement"] == "-10.0000"
    assert payload["metrics"]["rougeL"]["improvement"] == "+0.0500"
    bench = payload["benchmarks"]["hellaswag"]
    assert (bench["accuracy"], bench["improvement"]) == (0.68, "+0.0200")
    assert payload["rag_integration"] == {"latency_p95": "150ms"}
    assert "lfm" in payload["versions"]
    json.dumps(payload)  # serializable as is


def test_gates_pass_and_fail_with_the_bound_in_the_message():
    payload = _results(
        {"perplexity": 8.0, "f1": 0.4},
        {"perplexity": 7.5, "f1": 0.3},
        {"hellaswag": {"accuracy": 0.60}},
        {"hellaswag": {"accuracy": 0.65}},
    )
    checked = gates.check(
        gates.Gates(
            max_perplexity=10,
            min_scores={"f1": 0.5},
            min_improvement={"f1": 0.05},
            max_regression={"hellaswag": 0.02, "perplexity": 1.0},
        ),
        payload,
    )
    by_name = {g.gate: g for g in checked}
    assert by_name["max_perplexity"].passed
    assert not by_name["min_scores.f1"].passed
    assert by_name["min_improvement.f1"].passed  # +0.1 >= 0.05
    assert not by_name["max_regression.hellaswag"].passed  # lost 0.05 > 0.02
    assert by_name["max_regression.perplexity"].passed  # rose by 0.5 <= 1
    assert by_name["max_regression.hellaswag"].message() == (
        "gate max_regression.hellaswag FAILED: 0.05 > 0.02"
    )
    assert by_name["min_scores.f1"].message() == "gate min_scores.f1 FAILED: 0.4 < 0.5"
    results.with_gates(payload, checked)
    assert payload["passed"] is False


def test_max_perplexity_fails_above_the_bound():
    [gate] = gates.check(gates.Gates(max_perplexity=5), _results({"perplexity": 8.0}))
    assert not gate.passed and gate.message() == "gate max_perplexity FAILED: 8 > 5"


def test_a_gate_on_an_unmeasured_score_or_without_base_is_a_clear_error():
    with pytest.raises(RuntimeConfigError, match="no score named 'bleu' was measured"):
        gates.check(gates.Gates(min_scores={"bleu": 1}), _results({"f1": 0.4}))
    with pytest.raises(RuntimeConfigError, match="compare_with_base: true"):
        gates.check(gates.Gates(min_improvement={"f1": 0.1}), _results({"f1": 0.4}))


def test_report_and_chart(tmp_path):
    pytest.importorskip("matplotlib")
    payload = _results({"perplexity": 8.0, "f1": 0.4}, {"perplexity": 12.0, "f1": 0.3})
    results.with_gates(payload, gates.check(gates.Gates(max_perplexity=10), payload))
    path = report.write_report(payload, tmp_path)
    text = path.read_text()
    assert "| perplexity (lower is better) | 8 | 12 | +4 |" in text
    assert "pass `max_perplexity`" in text and "![fine-tuned vs base](eval_comparison.png)" in text
    assert (tmp_path / report.CHART_FILE).read_bytes().startswith(b"\x89PNG")


def _hybrid_results(adapter_metrics, base_metrics):
    """eval_results for a hybrid method: adapter name -> metrics, against one base."""
    tuned = {name: results.ModelScores(name, dict(m)) for name, m in adapter_metrics.items()}
    return results.build(
        "h_v1.0.0",
        tuned,
        results.ModelScores("base", dict(base_metrics)),
        base_model="base",
        settings={},
        datasets=[
            {
                "name": "holdout",
                "source": "d",
                "sha256": "0" * 64,
                "split": "holdout",
                "examples": 3,
            }
        ],
    )


def test_hybrid_results_hold_each_adapter_against_the_one_base():
    payload = _hybrid_results(
        {"lora": {"perplexity": 8.0}, "ia3": {"perplexity": 14.0}}, {"perplexity": 12.0}
    )
    assert "metrics" not in payload and list(payload["adapters"]) == ["lora", "ia3"]
    assert payload["adapters"]["lora"]["metrics"]["perplexity"]["improvement"] == "+4.0000"
    assert payload["adapters"]["ia3"]["metrics"]["perplexity"]["improvement"] == "-2.0000"
    assert payload["adapters"]["ia3"]["model_path"] == "ia3"
    json.dumps(payload)


def test_hybrid_gates_apply_to_every_adapter_and_name_the_failing_one():
    payload = _hybrid_results(
        {"lora": {"perplexity": 8.0}, "ia3": {"perplexity": 14.0}}, {"perplexity": 12.0}
    )
    checked = gates.check_all(
        gates.Gates(max_perplexity=13, min_improvement={"perplexity": 0.0}), payload
    )
    assert [(g.adapter, g.gate, g.passed) for g in checked] == [
        ("lora", "max_perplexity", True),
        ("lora", "min_improvement.perplexity", True),
        ("ia3", "max_perplexity", False),
        ("ia3", "min_improvement.perplexity", False),
    ]
    assert checked[2].message() == "gate max_perplexity FAILED for adapter ia3: 14 > 13"
    assert gates.failure_line(checked) == (
        "evaluation gates failed for adapter ia3 (max_perplexity, min_improvement.perplexity)"
    )
    results.with_gates(payload, checked)
    assert payload["passed"] is False and len(payload["gates"]) == 4
    assert payload["adapters"]["lora"]["passed"] is True
    assert payload["adapters"]["ia3"]["passed"] is False
    assert payload["gates"][2] == {
        "gate": "max_perplexity", "value": 14.0, "bound": 13, "passed": False, "adapter": "ia3"
    }  # fmt: skip


def test_a_single_model_failure_line_names_the_gates_only():
    payload = _results({"perplexity": 8.0, "f1": 0.4})
    checked = gates.check_all(gates.Gates(max_perplexity=5, min_scores={"f1": 0.1}), payload)
    assert gates.failure_line(checked) == "evaluation gates failed: max_perplexity"
    assert gates.failure_line(checked[1:]) is None


def test_hybrid_report_has_a_section_per_adapter_and_one_chart(tmp_path):
    pytest.importorskip("matplotlib")
    payload = _hybrid_results(
        {"lora": {"perplexity": 8.0}, "ia3": {"perplexity": 14.0}}, {"perplexity": 12.0}
    )
    results.with_gates(payload, gates.check_all(gates.Gates(max_perplexity=13), payload))
    text = report.write_report(payload, tmp_path).read_text()
    assert "## Adapter `lora` (passed)" in text and "## Adapter `ia3` (**FAILED**)" in text
    assert "| perplexity (lower is better) | 8 | 12 | +4 |" in text
    assert "| perplexity (lower is better) | 14 | 12 | -2 |" in text
    assert "- **FAIL** `max_perplexity`: 14 (bound 13)" in text
    assert (tmp_path / report.CHART_FILE).read_bytes().startswith(b"\x89PNG")

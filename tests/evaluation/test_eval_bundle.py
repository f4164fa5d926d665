"""End to end: the emitted evaluate.py of examples/quickstart_eval.yaml, run on the CPU."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pytest.importorskip("peft")
pytest.importorskip("lm_eval")

from conftest import lfm_cli as _lfm  # noqa: E402
from conftest import run_script as _run  # noqa: E402

BUNDLE = "build/quickstart_eval"


def _bundle_with_adapter(project: Path, config: str, bundle: str, adapter: Path) -> Path:
    _lfm("compile", config, "-o", bundle, cwd=project)
    shutil.copytree(adapter, project / bundle / "output")  # as train.py leaves it
    return project / bundle


def test_evaluate_py_scores_the_adapter_against_its_base(project, trained_adapter):
    bundle = _bundle_with_adapter(project, "examples/quickstart_eval.yaml", BUNDLE, trained_adapter)
    done = _run(bundle / "evaluate.py", cwd=project)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    eval_dir = bundle / "output" / "eval"
    results = json.loads((eval_dir / "eval_results.json").read_text())["evaluation_results"]
    assert results["model_id"] == "quickstart_eval_v0.1.0"
    ppl = results["metrics"]["perplexity"]
    assert ppl["value"] < ppl["base"] and ppl["improvement"].startswith("+")
    assert {"rouge1", "rougeL", "f1", "latency_p95_ms"} <= set(results["metrics"])
    assert {"lfm_choice", "lfm_qa"} <= set(results["benchmarks"])
    assert "rag_accuracy" in results["benchmarks"]["lfm_qa"]["metrics"]
    assert results["rag_integration"]["latency_p95"].endswith("ms")
    assert results["datasets"][0]["split"] == "holdout" and results["datasets"][0]["examples"] == 5
    assert results["settings"]["generation"]["max_new_tokens"] == 24
    assert results["passed"] is True and len(results["gates"]) == 3
    assert (eval_dir / "eval_report.md").exists() and (eval_dir / "eval_comparison.png").exists()
    # What the scores are made of: each held-out question with both models' answers.
    rows = [
        json.loads(line) for line in (eval_dir / "eval_examples.jsonl").read_text().splitlines()
    ]
    assert len(rows) == 5 and all(r["question"] and r["reference"] for r in rows)
    assert {"answer", "f1", "base_answer", "base_f1"} <= set(rows[0])
    mean_f1 = sum(r["f1"] for r in rows) / len(rows)
    assert mean_f1 == pytest.approx(results["metrics"]["f1"]["value"], abs=1e-3)


def test_evaluate_py_exits_non_zero_when_a_gate_fails(project, trained_adapter):
    config = project / "examples" / "strict_eval.yaml"
    text = (project / "examples" / "quickstart_eval.yaml").read_text()
    head = text.split("  evaluation:")[0]
    config.write_text(
        head + "  evaluation:\n    metrics: [perplexity]\n    compare_with_base: false\n"
        "    gates: {max_perplexity: 1.0}\n"
    )
    bundle = _bundle_with_adapter(project, str(config), "build/strict", trained_adapter)
    done = _run(bundle / "evaluate.py", cwd=project)
    assert done.returncode == 1
    assert "gate max_perplexity FAILED: " in done.stderr and "> 1" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.slow
def test_train_py_runs_the_evaluation_after_training(project):
    _lfm("compile", "examples/quickstart_eval.yaml", "-o", "build/full", cwd=project)
    done = _run(project / "build/full/train.py", cwd=project)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads((project / "build/full/output/eval/eval_results.json").read_text())
    assert results["evaluation_results"]["passed"] is True

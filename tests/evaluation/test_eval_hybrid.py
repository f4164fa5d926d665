"""A hybrid method's evaluation: every adapter train.py trained is scored and gated, from the
emitted evaluate.py and from `lfm evaluate` on the run's output directory."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pytest.importorskip("peft")

from conftest import QUICKSTART_DATA, lfm_cli, run_script  # noqa: E402

BUNDLE = "build/hybrid_eval"


@pytest.fixture(scope="module")
def harmful_ia3(eval_tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An (IA)^3 adapter that flips and amplifies what it scales: far worse than the base."""
    import torch
    from lfm.runtime import modeling
    from peft import IA3Config, get_peft_model

    model = modeling.load_model(str(eval_tiny_model), dtype="float32")
    model = get_peft_model(
        model,
        IA3Config(
            target_modules=["k_proj", "v_proj", "down_proj"], feedforward_modules=["down_proj"]
        ),
    )
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "ia3_l" in name:
                parameter.fill_(-3.0)
    out = tmp_path_factory.mktemp("eval-ia3") / "ia3"
    model.save_pretrained(str(out))
    modeling.load_tokenizer(str(eval_tiny_model)).save_pretrained(str(out))
    return out


@pytest.fixture(scope="module")
def hybrid_output(project: Path, trained_adapter: Path, harmful_ia3: Path) -> Path:
    """build/hybrid_eval compiled, its output/ as train.py leaves it: lora/ (trained, better
    than the base) and ia3/ (worse than the base)."""
    lfm_cli("compile", "examples/hybrid_eval.yaml", "-o", BUNDLE, cwd=project)
    output = project / BUNDLE / "output"
    shutil.copytree(trained_adapter, output / "lora")
    shutil.copytree(harmful_ia3, output / "ia3")
    return output


def test_evaluate_py_scores_and_gates_every_adapter(project, hybrid_output):
    done = run_script(project / BUNDLE / "evaluate.py", cwd=project)
    # The first adapter passes its gate; only evaluating the second one can fail the run.
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        "error: evaluation gates failed for adapter ia3 (min_improvement.perplexity)"
    )
    assert "gate min_improvement.perplexity passed for adapter lora" in done.stdout
    results = json.loads((hybrid_output / "eval" / "eval_results.json").read_text())
    results = results["evaluation_results"]
    lora, ia3 = results["adapters"]["lora"], results["adapters"]["ia3"]
    assert lora["model_path"].endswith("lora") and ia3["model_path"].endswith("ia3")
    base_ppl = lora["metrics"]["perplexity"]["base"]
    assert ia3["metrics"]["perplexity"]["base"] == base_ppl  # one base, scored once
    assert lora["metrics"]["perplexity"]["value"] < base_ppl < ia3["metrics"]["perplexity"]["value"]
    assert {"f1"} <= set(lora["metrics"]) and {"f1"} <= set(ia3["metrics"])
    assert (lora["passed"], ia3["passed"], results["passed"]) == (True, False, False)
    assert [(g["adapter"], g["passed"]) for g in results["gates"]] == [
        ("lora", True),
        ("ia3", False),
    ]
    report = (hybrid_output / "eval" / "eval_report.md").read_text()
    assert "## Adapter `lora` (passed)" in report and "## Adapter `ia3` (**FAILED**)" in report
    assert (hybrid_output / "eval" / "eval_comparison.png").exists()
    first = json.loads((hybrid_output / "eval" / "eval_examples.jsonl").read_text().splitlines()[0])
    assert set(first["answers"]) == {"lora", "ia3"} and "base_answer" in first


def test_lfm_evaluate_on_a_hybrid_output_scores_each_adapter(hybrid_output, tmp_path):
    from click.testing import CliRunner
    from lfm.cli import lfm

    out = tmp_path / "eval"
    result = CliRunner().invoke(
        lfm,
        [
            "evaluate", "--model", str(hybrid_output), "--dataset", str(QUICKSTART_DATA),
            "--limit", "4", "--compare-base", "--min-improvement", "perplexity=0", "-o", str(out),
        ],
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "evaluation gates failed for adapter ia3 (min_improvement.perplexity)" in result.output
    payload = json.loads((out / "eval_results.json").read_text())["evaluation_results"]
    assert sorted(payload["adapters"]) == ["ia3", "lora"]
    assert payload["model_id"] == Path(hybrid_output).parent.name


def _final_eval_perplexity(adapter_dir: Path) -> float:
    """exp of the holdout loss the Trainer logged at the end of training (metrics.json)."""
    import math

    metrics = json.loads((adapter_dir / "metrics.json").read_text())
    return math.exp(metrics["eval"][-1]["eval_loss"])


@pytest.mark.slow
def test_train_py_trains_both_adapters_then_evaluates_each(project):
    lfm_cli("compile", "examples/hybrid_eval.yaml", "-o", "build/hybrid_full", cwd=project)
    done = run_script(project / "build/hybrid_full/train.py", cwd=project)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    output = project / "build/hybrid_full/output"
    results = json.loads((output / "eval" / "eval_results.json").read_text())
    adapters = results["evaluation_results"]["adapters"]
    assert sorted(adapters) == ["ia3", "lora"] and results["evaluation_results"]["passed"] is True
    for name, section in adapters.items():
        # The holdout split is one batch: the Trainer's last eval loss is the same
        # token-weighted mean, so evaluate.py scored exactly what each run trained.
        scored = section["metrics"]["perplexity"]["value"]
        assert scored == pytest.approx(_final_eval_perplexity(output / name), rel=1e-4), name

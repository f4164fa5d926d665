"""Preference bundles train for real on the tiny model: DPO, KTO, ORPO and SimPO each run TRL's
trainer from the emitted train.py, log the preference figures, score the held-out pairs before
and after, and save an adapter that loads back."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("trl")
pytest.importorskip("peft")

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("preference")
    (root / "examples").mkdir()
    shutil.copytree(REPO / "examples" / "data", root / "examples" / "data")
    lfm(root, "dev", "tiny-model", "examples/tiny-model")
    return root


def lfm(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, "-m", "lfm.cli", *args], cwd=cwd, env=ENV, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def bundle(
    project: Path,
    objective: str,
    max_steps: int,
    extra: str = "",
    name: str = "",
    method: str = "lora",
) -> Path:
    """examples/dpo.yaml with another objective (its own settings chosen by lfm) and a few
    steps; ``extra`` is appended to the config (an evaluation block), ``name`` names it."""
    name = name or objective
    text = (REPO / "examples" / "dpo.yaml").read_text() + extra
    text = text.replace("method: lora\n", f"method: {method}\n")
    text = text.replace("name: dpo\n", f"name: {name}\n")
    text = text.replace("objective: dpo", f"objective: {objective}")
    if objective != "dpo":  # the example's DPO settings; the others take their defaults
        text = text.replace("      beta: 0.1                      # how far", "      # beta:")
        text = text.replace("    preference:\n", "")
    text = text.replace("      epochs: 3\n", f"      epochs: 3\n      max_steps: {max_steps}\n")
    config = project / "examples" / f"{name}.yaml"
    config.write_text(text)
    lfm(project, "compile", str(config), "-o", f"build/{name}")
    return project / "build" / name


def train(path: Path) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, "train.py"], cwd=path, env=ENV, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def test_dpo_trains_logs_rewards_and_scores_the_held_out_pairs(project: Path) -> None:
    path = bundle(project, "dpo", 4)
    done = train(path)
    output = path / "output"
    steps = [json.loads(line) for line in (output / "metrics.jsonl").read_text().splitlines()]
    assert len(steps) == 4
    for key in ("rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies"):
        assert all(key in step for step in steps), key
    scored = json.loads((output / "preference_eval.json").read_text())
    assert scored["before"]["pairs"] == scored["after"]["pairs"] == 10  # 20% of 48 pairs
    assert scored["before"] != scored["after"]  # the adapter changed how the pairs are scored
    assert "held-out preference accuracy after training" in done.stderr + done.stdout
    # The reference is the adapter-disabled base: no copy of the adapter saved beside it.
    assert not (output / "ref").exists() and not list(output.glob("checkpoint-*/ref"))
    reloaded(output)
    # Run again (nothing left to train): the start is scored once for these pairs, not again.
    marked = {**scored, "before": {**scored["before"], "mean_logp_margin": 123.0}}
    (output / "preference_eval.json").write_text(json.dumps(marked))
    train(path)
    again = json.loads((output / "preference_eval.json").read_text())
    assert again["before"]["mean_logp_margin"] == 123.0 and again["after"] == scored["after"]


@pytest.mark.parametrize("objective", ["kto", "orpo", "simpo"])
def test_kto_orpo_and_simpo_train_and_save_adapters_that_reload(
    project: Path, objective: str
) -> None:
    path = bundle(project, objective, 2)
    train(path)
    steps = [
        json.loads(line) for line in (path / "output" / "metrics.jsonl").read_text().splitlines()
    ]
    assert len(steps) == 2 and "rewards/chosen" in steps[-1]
    assert all(step["tokens"] > 0 for step in steps)  # counted however TRL calls the model
    reloaded(path / "output")


def _bitsandbytes_runs() -> bool:
    try:
        import bitsandbytes  # noqa: F401
    except Exception:
        return False
    return True


@pytest.mark.skipif(not _bitsandbytes_runs(), reason="bitsandbytes cannot run on this machine")
def test_qlora_dpo_trains_on_the_4_bit_base_with_the_adapter_disabled_as_reference(
    project: Path,
) -> None:
    """QLoRA and DPO together: the base loads in 4 bits (bitsandbytes runs on a CPU too), TRL's
    reference is that base with the adapter disabled, and the adapter saved loads back."""
    from bitsandbytes.nn import Linear4bit

    path = bundle(project, "dpo", 3, name="qlora-dpo", method="qlora")
    assert "BitsAndBytesConfig(" in (path / "train.py").read_text()
    train(path)
    output = path / "output"
    steps = [json.loads(line) for line in (output / "metrics.jsonl").read_text().splitlines()]
    assert len(steps) == 3 and all("rewards/margins" in step for step in steps)
    assert steps[0]["rewards/margins"] == 0.0  # the policy starts as its own reference
    scored = json.loads((output / "preference_eval.json").read_text())
    assert scored["before"] != scored["after"]
    assert not (output / "ref").exists()
    from lfm.runtime.evaluation import model_eval
    from transformers import BitsAndBytesConfig

    quantized = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4")
    config = json.loads((output / "adapter_config.json").read_text())
    loaded = model_eval.load_for_eval(
        str(output),
        base_model=str(output / config["base_model_name_or_path"]),
        quantization_config=quantized,
    )
    assert any(isinstance(m, Linear4bit) for m in loaded.model.modules())
    assert loaded.kind == "adapter"


EVALUATION = """
  evaluation:
    run_after_training: true
    gates:
      min_improvement: {mean_logp_margin: -100.0}
      min_scores: {preference_accuracy: %s}
"""


@pytest.mark.parametrize("bound", [0.0, 1.01])  # one gate always passes, one never can
def test_evaluate_py_scores_the_held_out_pairs_against_the_base(
    project: Path, bound: float
) -> None:
    """evaluate.py (run by train.py after training) scores the pairs train.py held out, with the
    base model and the adapter: the same numbers train.py recorded before and after training,
    in eval_results.json like any metric, held to the gates."""
    path = bundle(project, "dpo", 3, EVALUATION % bound, name=f"dpo-eval-{bound}")
    done = subprocess.run(
        [sys.executable, "train.py"], cwd=path, env=ENV, capture_output=True, text=True
    )
    output = path / "output"
    results = json.loads((output / "eval" / "eval_results.json").read_text())
    results = results["evaluation_results"]
    trained = json.loads((output / "preference_eval.json").read_text())
    scores = results["scores"]
    assert set(scores) == {"preference_accuracy", "mean_logp_margin"}  # no perplexity of pairs
    for name in scores:
        assert scores[name]["base"] == pytest.approx(trained["before"][name], abs=1e-6)
        assert scores[name]["value"] == pytest.approx(trained["after"][name], abs=1e-6)
    assert results["datasets"][0]["examples"] == trained["after"]["pairs"] == 10
    gates = {gate["gate"]: gate["passed"] for gate in results["gates"]}
    assert gates["min_improvement.mean_logp_margin"] is True
    assert gates["min_scores.preference_accuracy"] is (bound == 0.0)
    # A failed gate fails train.py, with the gate named on one line and no traceback.
    assert done.returncode == (0 if bound == 0.0 else 1), done.stderr[-3000:]
    if bound:
        assert "error: evaluation gates failed: min_scores.preference_accuracy" in done.stderr
        assert "Traceback" not in done.stderr


def reloaded(output: Path) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    config = json.loads((output / "adapter_config.json").read_text())
    base = AutoModelForCausalLM.from_pretrained(output / config["base_model_name_or_path"])
    model = PeftModel.from_pretrained(base, output)
    assert any("lora_A" in name for name, _ in model.named_parameters())

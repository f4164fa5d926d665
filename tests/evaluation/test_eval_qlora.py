"""QLoRA evaluation: the adapter is scored on the 4-bit base it was trained on, loaded with the
BitsAndBytesConfig train.py uses; without a working bitsandbytes it stops as training does."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

pytest.importorskip("peft")

from conftest import ENV, lfm_cli, run_script  # noqa: E402
from lfm.runtime.errors import RuntimeConfigError  # noqa: E402

BUNDLE = "build/qlora_eval"


def _nf4_config():
    import torch
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.float32,
    )


def _bitsandbytes_runs() -> bool:
    try:
        import bitsandbytes  # noqa: F401
    except Exception:
        return False
    return True


needs_bitsandbytes = pytest.mark.skipif(
    not _bitsandbytes_runs(), reason="bitsandbytes cannot run on this machine"
)


def _ppl(model: Path, spec, quantization_config=None, base: Path | None = None) -> float:
    from lfm.runtime.evaluation import evalset, model_eval, run

    tokenizer = model_eval.load_eval_tokenizer(str(model))
    plan = run.EvalPlan(
        metrics=("perplexity",),
        evalset=evalset.holdout_set(spec, tokenizer),
        quantization_config=quantization_config,
    )
    base_model = None if base is None else str(base)
    return run.score_model(str(model), plan, base_model=base_model).metrics["perplexity"]


@needs_bitsandbytes
def test_a_quantization_config_loads_the_base_in_4_bit(eval_tiny_model, trained_adapter):
    from bitsandbytes.nn import Linear4bit
    from lfm.runtime.evaluation import model_eval

    loaded = model_eval.load_for_eval(
        str(trained_adapter), base_model=str(eval_tiny_model), quantization_config=_nf4_config()
    )
    layers = [m for m in loaded.model.modules() if isinstance(m, Linear4bit)]
    assert layers and loaded.kind == "adapter"


def test_without_bitsandbytes_evaluation_stops_with_trainings_error(
    eval_tiny_model, trained_adapter, monkeypatch
):
    from lfm.runtime import modeling
    from lfm.runtime.evaluation import model_eval

    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # `import bitsandbytes` fails
    with pytest.raises(RuntimeConfigError) as training_error:
        modeling.load_model(str(eval_tiny_model), quantization_config=_nf4_config())
    with pytest.raises(RuntimeConfigError) as evaluation_error:
        model_eval.load_for_eval(
            str(trained_adapter), base_model=str(eval_tiny_model), quantization_config=_nf4_config()
        )
    assert str(evaluation_error.value) == str(training_error.value)
    assert "'qlora' needs bitsandbytes" in str(evaluation_error.value)


@pytest.fixture(scope="module")
def qlora_bundle(project: Path, trained_adapter: Path) -> Path:
    """quickstart_eval as a QLoRA run (perplexity only), its output/ as train.py leaves it."""
    text = (project / "examples" / "quickstart_eval.yaml").read_text()
    head = text.split("  evaluation:")[0].replace("method: lora", "method: qlora")
    config = project / "examples" / "qlora_eval.yaml"
    config.write_text(
        head + "  evaluation:\n    metrics: [perplexity]\n    compare_with_base: true\n"
        "    gates: {min_improvement: {perplexity: 0.0}}\n"
    )
    lfm_cli("compile", str(config), "-o", BUNDLE, cwd=project)
    shutil.copytree(trained_adapter, project / BUNDLE / "output")
    return project / BUNDLE


@needs_bitsandbytes
def test_evaluate_py_scores_the_adapter_on_the_4_bit_base(
    project, qlora_bundle, trained_adapter, eval_tiny_model, quickstart_spec
):
    done = run_script(qlora_bundle / "evaluate.py", cwd=project)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads((qlora_bundle / "output" / "eval" / "eval_results.json").read_text())
    results = results["evaluation_results"]
    assert results["settings"]["quantization"] == {
        "load_in_4bit": True,
        "bnb_4bit_quant_type": "nf4",
        "bnb_4bit_use_double_quant": True,
        "bnb_4bit_compute_dtype": "float32",  # the run's precision on a CPU
    }
    scored = results["metrics"]["perplexity"]
    # The numbers are the 4-bit models' (the base's too), not the full-precision ones'.
    for value, model, base in (
        (scored["value"], trained_adapter, eval_tiny_model),
        (scored["base"], eval_tiny_model, None),
    ):
        quantized = _ppl(model, quickstart_spec, _nf4_config(), base=base)
        full = _ppl(model, quickstart_spec, base=base)
        assert value == pytest.approx(quantized, rel=1e-4)
        assert abs(value - full) > 1e-3 * full


def test_evaluate_py_without_bitsandbytes_is_trainings_one_line_error(
    project, qlora_bundle, tmp_path
):
    broken = tmp_path / "site" / "bitsandbytes"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text("raise ImportError('no bitsandbytes here')\n")
    env = {**ENV, "PYTHONPATH": os.pathsep.join([str(broken.parent), ENV.get("PYTHONPATH", "")])}
    done = run_script(qlora_bundle / "evaluate.py", cwd=project, env=env)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert (
        done.stderr.strip()
        .splitlines()[-1]
        .startswith(
            "error: fine_tuning.method 'qlora' needs bitsandbytes: pip install 'lfm[qlora]'"
        )
    )


@needs_bitsandbytes
@pytest.mark.slow
def test_train_py_then_evaluate_py_score_the_same_4_bit_model(project, quickstart_spec):
    import math

    text = (project / "examples" / "quickstart_eval.yaml").read_text()
    head = text.split("  evaluation:")[0].replace("method: lora", "method: qlora")
    config = project / "examples" / "qlora_full.yaml"
    config.write_text(
        head + "  evaluation:\n    metrics: [perplexity]\n    run_after_training: true\n"
    )
    lfm_cli("compile", str(config), "-o", "build/qlora_full", cwd=project)
    done = run_script(project / "build/qlora_full/train.py", cwd=project)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    output = project / "build/qlora_full/output"
    results = json.loads((output / "eval" / "eval_results.json").read_text())
    scored = results["evaluation_results"]["metrics"]["perplexity"]["value"]
    # The holdout is one batch: exp(the Trainer's last eval loss) is the same measurement on the
    # model as trained. bitsandbytes' CPU kernels drift ~0.06% between that process and a
    # reload; the same adapter on a full-precision base is further off.
    trained = math.exp(json.loads((output / "metrics.json").read_text())["eval"][-1]["eval_loss"])
    assert scored == pytest.approx(trained, rel=2e-3)
    full = _ppl(output, quickstart_spec, base=project / "examples" / "tiny-model")
    assert full != pytest.approx(trained, rel=2e-3)

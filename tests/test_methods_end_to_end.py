"""Every fine-tuning method, one row each: compile, train a tiny model on the CPU for two
epochs, check the holdout loss fell, and reload what was saved to check it changes the model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
ATTENTION = "target_modules: [q_proj, k_proj, v_proj, o_proj]"

# method, parameters block, saved adapter folders (relative to output/; "" = output itself)
METHODS = [
    ("lora", f"{{r: 8, lora_alpha: 16, {ATTENTION}}}", [""]),
    ("dora", f"{{r: 8, lora_alpha: 16, {ATTENTION}}}", [""]),
    ("qlora", f"{{r: 8, lora_alpha: 16, {ATTENTION}}}", [""]),
    ("full", "{}", [""]),
    ("adapters", "{adapter_type: ia3}", [""]),
    ("adapters", "{adapter_type: loha, r: 4}", [""]),
    ("adapters", "{adapter_type: lokr, r: 4}", [""]),
    ("adapters", "{adapter_type: oft}", [""]),
    ("prefix_tuning", "{num_virtual_tokens: 8}", [""]),
    ("prompt_tuning", "{num_virtual_tokens: 8}", [""]),
    (
        "prompt_tuning",
        "{num_virtual_tokens: 8, prompt_tuning_init: TEXT, prompt_tuning_init_text: Answer:}",
        [""],
    ),
    ("adapters", "{adapter_type: ia3, target_modules: [k_proj, v_proj, down_proj]}", [""]),
    ("hybrid_lora_adapter", f"{{r: 8, {ATTENTION}}}", ["lora", "ia3"]),
    ("hybrid_lora_adapter", f"{{r: 8, {ATTENTION}, adapter_type: oft}}", ["lora", "oft"]),
]


def config(method: str, parameters: str) -> str:
    return f"""\
model_config:
  name: {method}
  base_model: ./tiny-model
  fine_tuning:
    method: {method}
    parameters: {parameters}
    training: {{epochs: 2, batch_size: 8, logging_steps: 1, save_steps: 1000}}
  dataset:
    source: {{path: ./data/quickstart.jsonl}}
    preprocessing: {{format: alpaca, max_length: 256}}
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("methods")
    (root / "data").mkdir()
    (root / "data" / "quickstart.jsonl").write_bytes(
        (REPO / "examples/data/quickstart.jsonl").read_bytes()
    )
    from lfm.runtime.tiny import build_tiny_model

    build_tiny_model(root / "tiny-model")
    return root


@pytest.mark.parametrize(
    ("row", "method", "parameters", "saved"),
    [(i, *row) for i, row in enumerate(METHODS)],
    ids=[f"{m}-{p}" for m, p, _ in METHODS],
)
def test_method_trains_and_its_output_changes_the_model(project, row, method, parameters, saved):
    if method == "qlora":
        pytest.importorskip(
            "bitsandbytes", reason="QLoRA needs bitsandbytes (pip install bitsandbytes)"
        )
    name = f"{method}_{row}"
    (project / f"{name}.yaml").write_text(config(method, parameters))
    bundle = project / "build" / name
    subprocess.run(
        [
            sys.executable,
            "-m",
            "lfm.cli",
            "compile",
            f"{name}.yaml",
            "-o",
            str(bundle),
        ],
        cwd=project,
        env=ENV,
        check=True,
        capture_output=True,
    )
    done = subprocess.run(
        [sys.executable, str(bundle / "train.py")],
        cwd=project,
        env=ENV,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]

    for folder in saved:
        output = bundle / "output" / folder
        evals = [e["eval_loss"] for e in json.loads((output / "metrics.json").read_text())["eval"]]
        assert len(evals) == 2 and evals[-1] < evals[0], evals
        assert _logits_change(project / "tiny-model", output, full=method == "full")


def _logits_change(base_dir: Path, output: Path, *, full: bool) -> bool:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(output)
    inputs = tokenizer("Translate to French.", return_tensors="pt")
    base = AutoModelForCausalLM.from_pretrained(base_dir)
    tuned = (
        AutoModelForCausalLM.from_pretrained(output)
        if full
        else PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_dir), output)
    )
    with torch.no_grad():
        before, after = base(**inputs).logits, tuned(**inputs).logits
    # Prompt-learning methods prepend virtual tokens: compare the last position's prediction.
    return not torch.allclose(before[:, -1], after[:, -1], atol=1e-4)

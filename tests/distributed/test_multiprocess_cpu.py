"""Real multi-process runs of emitted scripts on the CPU: DDP, DeepSpeed ZeRO-2 and ZeRO-3.

Each bundle trains a tiny local model with two processes under torchrun (gloo), and is compared
with the same job in one process: same global batch, so the first step sees the same examples
and the losses track each other. Slow (minutes on two cores): `pytest -m slow`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

REPO = Path(__file__).resolve().parents[2]
ENV = {
    **os.environ,
    "HF_HUB_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "PYTHONUNBUFFERED": "1",
    "OMP_NUM_THREADS": "1",
}
CONFIG = """\
model_config:
  name: {name}
  base_model: ./tiny-model
  fine_tuning:
    method: lora
    parameters: {{r: 8, lora_alpha: 16, lora_dropout: 0.0, target_modules: [q_proj, v_proj]}}
    training:
      max_steps: 12
      batch_size: {batch}
      learning_rate: 3.0e-3
      logging_steps: 1
      save_steps: 100
      precision: fp32
  dataset:
    source: {{type: local, path: ./data.jsonl}}
    preprocessing: {{format: alpaca, max_length: 128}}
    validation: {{split_ratio: 0}}
  distributed: {distributed}
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    from lfm.runtime.tiny import build_tiny_model

    root = tmp_path_factory.mktemp("multiprocess")
    build_tiny_model(root / "tiny-model")
    shutil.copy(REPO / "examples/data/quickstart.jsonl", root / "data.jsonl")
    return root


def compile_bundle(project: Path, name: str, batch: int, distributed: str) -> Path:
    (project / f"{name}.yaml").write_text(
        CONFIG.format(name=name, batch=batch, distributed=distributed)
    )
    subprocess.run(
        [sys.executable, "-m", "lfm.cli", "compile", f"{name}.yaml", "-o", name],
        cwd=project,
        env=ENV,
        check=True,
        capture_output=True,
    )
    return project / name


def run(project: Path, *command: str) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, *command], cwd=project, env=ENV, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    return done


def launch(project: Path, bundle: Path, launcher: str) -> list[str]:
    """Start two processes; returns each rank's output (rank 0 first)."""
    if launcher == "accelerate":
        # The bundle's own accelerate.yaml (MULTI_GPU or DEEPSPEED, use_cpu false), from the
        # bundle directory as its README says.
        done = run(
            bundle,
            "-m",
            "accelerate.commands.launch",
            "--config_file",
            "accelerate.yaml",
            "train.py",
        )
        text = done.stdout + done.stderr
        return [text, text]
    logs = project / f"logs-{bundle.name}"
    run(
        project,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--tee",
        "3",
        "--log-dir",
        str(logs),
        str(bundle / "train.py"),
    )
    return ["".join(p.read_text() for p in logs.rglob(f"attempt_0/{r}/*.log")) for r in (0, 1)]


def losses(bundle: Path) -> list[float]:
    metrics = json.loads((bundle / "output" / "metrics.json").read_text())
    return [step["loss"] for step in metrics["steps"]]


@pytest.fixture(scope="module")
def one_process(project) -> list[float]:
    """The reference: the same job, global batch 8, in a single process."""
    bundle = compile_bundle(project, "single", 8, "{strategy: none}")
    run(project, str(bundle / "train.py"))
    return losses(bundle)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("strategy", "launcher"),
    [
        ("ddp", "torchrun"),
        ("ddp", "accelerate"),
        ("deepspeed_zero2", "torchrun"),
        ("deepspeed_zero3", "torchrun"),
        ("deepspeed_zero3", "accelerate"),
    ],
)
def test_two_processes_train_together_like_one(project, one_process, strategy, launcher):
    if strategy.startswith("deepspeed"):
        pytest.importorskip("deepspeed")
    name = f"{strategy}-{launcher}"
    bundle = compile_bundle(project, name, 4, f"{{strategy: {strategy}, gpus: 2}}")
    outputs = launch(project, bundle, launcher)

    # Both ranks built the model and attached the adapter (the second one too).
    if launcher == "torchrun":
        for rank, text in enumerate(outputs):
            assert "trainable params" in text, rank
    else:
        assert outputs[0].count("trainable params") == 2
    # Batch 4 per process packs on every strategy: no rank falls back to padding. Under ZeRO-3
    # the weights are partitioned before training, so the packed-logits probe is skipped.
    for text in outputs:
        assert "Sample packing is off" not in text
        skipped = "Sample packing without its packed-logits check" in text
        assert skipped == (strategy == "deepspeed_zero3"), text[-2000:]
    # One saved result: one adapter and one metrics file, from rank 0.
    output = bundle / "output"
    assert sorted(p.name for p in output.glob("adapter_model*")) == ["adapter_model.safetensors"]
    two = losses(bundle)
    assert len(two) == len(one_process) == 12
    # Step 1 averages the loss of the global batch of 8: 4 examples on each rank. Only with
    # both ranks in it does it equal the one-process loss on the same 8 examples.
    assert two[0] == pytest.approx(one_process[0], rel=0.02), (two, one_process)
    mean_two, mean_one = sum(two) / 12, sum(one_process) / 12
    assert mean_two == pytest.approx(mean_one, rel=0.05), (two, one_process)

    from peft import PeftConfig

    assert PeftConfig.from_pretrained(str(output)).r == 8


@pytest.mark.slow
def test_dpo_trains_in_two_processes(project):
    """A preference objective under DDP: TRL's DPOTrainer in two processes, the reference the
    adapter-disabled base in each, the held-out pairs scored by rank 0 alone."""
    pytest.importorskip("trl")
    shutil.copy(REPO / "examples/data/preference.jsonl", project / "pairs.jsonl")
    config = CONFIG.format(name="dpo-ddp", batch=4, distributed="{strategy: ddp, gpus: 2}")
    config = config.replace("    method: lora\n", "    method: lora\n    objective: dpo\n")
    config = config.replace("./data.jsonl", "./pairs.jsonl").replace(
        "format: alpaca", "format: preference"
    )
    config = config.replace("validation: {split_ratio: 0}", "validation: {split_ratio: 0.2}")
    config = config.replace("max_steps: 12", "max_steps: 3")
    (project / "dpo-ddp.yaml").write_text(config)
    subprocess.run(
        [sys.executable, "-m", "lfm.cli", "compile", "dpo-ddp.yaml", "-o", "dpo-ddp"],
        cwd=project, env=ENV, check=True, capture_output=True,
    )  # fmt: skip
    bundle = project / "dpo-ddp"
    assert "preference.DPOTrainer(" in (bundle / "train.py").read_text()
    rank0, rank1 = launch(project, bundle, "torchrun")
    assert "held-out preference accuracy before training" in rank0
    assert "held-out preference accuracy" not in rank1  # rank 0 scores, once
    scored = json.loads((bundle / "output" / "preference_eval.json").read_text())
    assert scored["before"]["pairs"] == scored["after"]["pairs"] == 10
    assert len(losses(bundle)) == 3 and (bundle / "output" / "adapter_model.safetensors").is_file()


def compile_preference(
    project: Path, name: str, strategy: str, method: str = "lora", objective: str = "dpo"
) -> Path:
    """The job of test_dpo_trains_in_two_processes, under ``strategy`` (and ``objective``)."""
    shutil.copy(REPO / "examples/data/preference.jsonl", project / "pairs.jsonl")
    config = CONFIG.format(name=name, batch=4, distributed=f"{{strategy: {strategy}, gpus: 2}}")
    config = config.replace(
        "    method: lora\n", f"    method: {method}\n    objective: {objective}\n"
    )
    if method == "full":
        config = config.replace(
            "    parameters: {r: 8, lora_alpha: 16, lora_dropout: 0.0, target_modules: [q_proj, v_proj]}\n",
            "",
        )
    config = config.replace("./data.jsonl", "./pairs.jsonl").replace(
        "format: alpaca", "format: preference"
    )
    config = config.replace("validation: {split_ratio: 0}", "validation: {split_ratio: 0.2}")
    config = config.replace("max_steps: 12", "max_steps: 3")
    (project / f"{name}.yaml").write_text(config)
    done = subprocess.run(
        [sys.executable, "-m", "lfm.cli", "compile", f"{name}.yaml", "-o", name],
        cwd=project, env=ENV, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return project / name


@pytest.mark.slow
@pytest.mark.parametrize(
    ("strategy", "method", "objective"),
    [
        ("deepspeed_zero2", "lora", "dpo"),
        ("deepspeed_zero2", "full", "dpo"),
        ("deepspeed_zero3", "lora", "dpo"),
        ("deepspeed_zero3", "full", "dpo"),
        ("deepspeed_zero3", "full", "kto"),  # KTO's frozen reference, partitioned as well
        ("deepspeed_zero2", "lora", "orpo"),  # no reference model at all
    ],
)
def test_preference_trains_under_deepspeed(project, strategy, method, objective):
    """Preference objectives under DeepSpeed in two processes: with LoRA the reference is the
    adapter-disabled base inside the DeepSpeed engine; with full fine-tuning TRL prepares the
    frozen reference copy for DeepSpeed itself (partitioned under ZeRO-3)."""
    pytest.importorskip("trl")
    pytest.importorskip("deepspeed")
    name = f"{objective}-{strategy}-{method}"
    bundle = compile_preference(project, name, strategy, method, objective)
    rank0, rank1 = launch(project, bundle, "torchrun")
    steps = losses(bundle)
    assert len(steps) == 3 and all(loss == loss for loss in steps), steps  # no NaN
    output = bundle / "output"
    if method == "lora":
        assert (output / "adapter_model.safetensors").is_file()
        assert not (output / "ref").exists()  # the reference: the adapter disabled, no copy
    else:
        assert list(output.glob("model*.safetensors")), sorted(p.name for p in output.iterdir())
    assert "held-out preference accuracy" not in rank1  # rank 0 scores, once
    if strategy == "deepspeed_zero2":
        scored = json.loads((output / "preference_eval.json").read_text())
        assert scored["before"]["pairs"] == scored["after"]["pairs"] == 10
    else:  # sharded: train.py says why it does not score
        assert "model is sharded across processes" in rank0

"""End to end: compile the quickstart, run its train.py on a tiny local model on the CPU.

Checks what a user relies on: the loss falls, the saved adapter loads with
`PeftModel.from_pretrained` and changes the model's output, and a run killed mid-way resumes
from its last checkpoint when started again.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
ENV = {
    **os.environ,
    "HF_HUB_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "PYTHONUNBUFFERED": "1",
}


def lfm(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lfm.cli", *args],
        cwd=cwd,
        env=ENV,
        capture_output=True,
        text=True,
        check=True,
    )


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A copy of examples/ with a freshly built tiny model, as a user has after the quickstart."""
    root = tmp_path_factory.mktemp("project")
    shutil.copytree(
        REPO / "examples", root / "examples", ignore=shutil.ignore_patterns("tiny-model")
    )
    lfm("dev", "tiny-model", "examples/tiny-model", cwd=root)
    return root


def run_train(
    project: Path, bundle: str, env: dict[str, str] = ENV, **popen: Any
) -> subprocess.CompletedProcess:
    """`python BUNDLE/train.py` from the project folder, its output captured."""
    return subprocess.run(
        [sys.executable, f"{bundle}/train.py"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        **popen,
    )


def compile_and_train(
    project: Path, config: str, bundle: str
) -> tuple[Path, subprocess.CompletedProcess]:
    lfm("compile", config, "-o", bundle, cwd=project)
    done = run_train(project, bundle)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    # The run ends saying where its result is, without third-party notices it cannot act on.
    assert "[lfm] done: the trained " in done.stderr, done.stderr[-2000:]
    for notice in (
        "`gradient_checkpointing` is deprecated",
        "'pin_memory' argument",
        "Setting accelerator to CPU",
    ):
        assert notice not in done.stderr
    return project / bundle, done


def quickstart_variant(project: Path, name: str, text: str) -> Path:
    """examples/NAME.yaml: ``text`` (the quickstart config, changed by the test) written out."""
    config = project / "examples" / f"{name}.yaml"
    config.write_text(text, encoding="utf-8")
    return config


def quickstart_text(project: Path) -> str:
    return (project / "examples" / "quickstart.yaml").read_text(encoding="utf-8")


def wait_for(path: Path, process: subprocess.Popen, what: str) -> None:
    """Until ``path`` exists; fail if ``process`` ends first or 5 minutes pass."""
    deadline = time.monotonic() + 300
    while not path.exists():
        assert process.poll() is None, f"training ended before {what}"
        assert time.monotonic() < deadline, f"no {what} within 5 minutes"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def quickstart(project) -> Path:
    """The quickstart bundle, compiled and trained once."""
    bundle, _ = compile_and_train(project, "examples/quickstart.yaml", "build/quickstart")
    return bundle


def test_quickstart_trains_and_the_adapter_changes_the_model(project, quickstart):
    output = quickstart / "output"
    metrics = json.loads((output / "metrics.json").read_text())
    losses = [s["loss"] for s in metrics["steps"]]
    assert len(losses) >= 10
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3 * 0.9, losses
    assert metrics["tokens_per_second"] > 0 and metrics["train_runtime"] > 0
    assert (output / "adapter_config.json").is_file()
    assert (output / "tokenizer_config.json").is_file()

    import peft
    import torch
    from lfm.runtime import __version__

    ran = metrics["versions"]  # read by the process that trained, for the registry's lineage
    assert ran["torch"] == torch.__version__ and ran["peft"] == peft.__version__
    assert ran["lfm-runtime"] == __version__ and ran["python"] == ".".join(
        map(str, sys.version_info[:3])
    )
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base_dir = project / "examples" / "tiny-model"
    tokenizer = AutoTokenizer.from_pretrained(output)
    inputs = tokenizer("Translate to French.", return_tensors="pt")
    base = AutoModelForCausalLM.from_pretrained(base_dir)
    with torch.no_grad():
        before = base(**inputs).logits
    tuned = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_dir), output)
    with torch.no_grad():
        after = tuned(**inputs).logits
    assert not torch.allclose(before, after, atol=1e-4)


def test_a_killed_run_resumes_from_its_checkpoint(project):
    text = quickstart_text(project)
    text = text.replace("epochs: 4", "epochs: 12").replace("save_steps: 10", "save_steps: 5")
    quickstart_variant(project, "resume", text)
    lfm("compile", "examples/resume.yaml", "-o", "build/resume", cwd=project)
    output = project / "build" / "resume" / "output"

    first = subprocess.Popen(
        [sys.executable, "build/resume/train.py"],
        cwd=project,
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for(output / "checkpoint-5" / "trainer_state.json", first, "the first checkpoint")
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert not (output / "metrics.json").exists(), "the run finished before it was killed"

    second = run_train(project, "build/resume")
    assert second.returncode == 0, second.stderr[-3000:]
    metrics = json.loads((output / "metrics.json").read_text())
    steps = [s["step"] for s in metrics["steps"]]
    assert steps == sorted(set(steps)) and steps[0] == 1, steps
    assert (
        metrics["global_step"] == steps[-1] == 72
    )  # 12 epochs x 6 steps: none lost, none repeated
    assert "resum" in (second.stdout + second.stderr).lower()


def test_llamafarm_models_train_with_a_dataset_flag(project):
    other = project / "more.jsonl"
    other.write_bytes((project / "examples" / "data" / "quickstart.jsonl").read_bytes())
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from lfm.cli import llamafarm; llamafarm()",
            "models",
            "train",
            "--config",
            "examples/quickstart.yaml",
            "--dataset",
            "more.jsonl",
        ],
        cwd=project,
        env=ENV,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    bundle = project / "build" / "quickstart-more"  # beside the config's own bundle, not over it
    assert (bundle / "output" / "metrics.json").is_file()
    lock = json.loads((bundle / "lfm.lock.json").read_text())
    decisions = {d["path"]: d for d in lock["decisions"]}
    path = decisions["model_config.dataset.source.path"]
    assert (
        path["rule"] == "command_line"
        and path["value"] == "../more.jsonl"
        or path["value"] == "./more.jsonl"
    )
    assert "--dataset more.jsonl" in path["reason"]


def test_accelerate_launch_runs_the_bundle(project):
    lfm("compile", "examples/quickstart.yaml", "-o", "build/launched", cwd=project)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "accelerate.commands.launch",
            "--config_file",
            "build/launched/accelerate.yaml",
            "build/launched/train.py",
        ],
        cwd=project,
        env=ENV,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads((project / "build/launched/output/metrics.json").read_text())
    assert metrics["global_step"] == 24


def test_export_merges_the_adapter_into_a_plain_model(project, quickstart):
    merged = project / "merged"
    done = lfm(
        "export", "--model", str(quickstart / "output"), "--merge", "-o", str(merged), cwd=project
    )
    assert "max logit difference" in done.stdout

    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(merged)
    inputs = tokenizer("Add the two numbers.", return_tensors="pt")
    plain = AutoModelForCausalLM.from_pretrained(merged)  # no PEFT involved
    base = AutoModelForCausalLM.from_pretrained(project / "examples" / "tiny-model")
    tuned = PeftModel.from_pretrained(base, quickstart / "output")
    with torch.no_grad():
        assert torch.allclose(plain(**inputs).logits, tuned(**inputs).logits, atol=1e-4)

    again = subprocess.run(
        [
            sys.executable,
            "-m",
            "lfm.cli",
            "export",
            "--model",
            str(quickstart / "output"),
            "--merge",
            "-o",
            str(merged),
        ],
        cwd=project,
        env=ENV,
        capture_output=True,
        text=True,
    )
    assert again.returncode == 1 and "not empty" in again.stderr and "Traceback" not in again.stderr


def test_merge_on_save_writes_a_merged_model(project):
    text = quickstart_text(project)
    quickstart_variant(
        project,
        "merged",
        text.replace("lora_dropout: 0.0", "lora_dropout: 0.0\n      merge_on_save: true").replace(
            "epochs: 4", "epochs: 1"
        ),
    )
    bundle, _ = compile_and_train(project, "examples/merged.yaml", "build/merged")
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(bundle / "output" / "merged")
    assert not any("lora" in name for name, _ in model.named_parameters())
    assert (bundle / "output" / "merged" / "MANIFEST.sha256").is_file()

    # A file of the user's in merged/: the rerun stops before training, not after it.
    (bundle / "output" / "merged" / "notes.md").write_text("mine")
    before = (bundle / "output" / "metrics.json").read_bytes()
    again = run_train(project, "build/merged")
    assert again.returncode == 1 and "did not write (notes.md)" in again.stderr
    assert (bundle / "output" / "metrics.json").read_bytes() == before
    assert (bundle / "output" / "merged" / "notes.md").read_text() == "mine"


def test_a_tracker_that_cannot_work_stops_train_py_before_it_loads_anything(project, tmp_path):
    """W&B with no key and no terminal, or an MLflow server that is not there: one line."""
    pytest.importorskip("wandb")
    pytest.importorskip("mlflow")
    quickstart_variant(
        project,
        "tracked",
        quickstart_text(project)
        + "  monitoring:\n    wandb_project: lfm-tests\n    mlflow_tracking_uri: http://127.0.0.1:9\n",
    )
    lfm("compile", "examples/tracked.yaml", "-o", "build/tracked", cwd=project)
    home = {
        "HOME": str(tmp_path),
        "NETRC": str(tmp_path / "netrc"),
        "WANDB_CONFIG_DIR": str(tmp_path),
    }
    env = {k: v for k, v in ENV.items() if not k.startswith("WANDB_")} | home

    def train(**extra: str) -> subprocess.CompletedProcess:
        return run_train(project, "build/tracked", env | extra, stdin=subprocess.DEVNULL)

    no_key = train()
    assert no_key.returncode == 1
    assert (
        no_key.stderr.strip()
        .splitlines()[-1]
        .startswith("error: monitoring.wandb_project: no W&B API key here: run `wandb login`")
    )
    dead_server = train(WANDB_MODE="offline")
    assert dead_server.returncode == 1
    assert (
        dead_server.stderr.strip()
        .splitlines()[-1]
        .startswith(
            "error: monitoring.mlflow_tracking_uri: cannot reach the MLflow server at "
            "http://127.0.0.1:9 ("
        )
    )
    assert "Traceback" not in no_key.stderr + dead_server.stderr
    assert not (project / "build" / "tracked" / "output").exists()  # nothing loaded or written


def test_a_recompiled_bundle_resumes_only_its_own_checkpoints(project):
    """Recompiling keeps output/: a longer run resumes it, a changed method refuses it."""
    short = (
        quickstart_text(project)
        .replace("      epochs: 4\n", "      max_steps: 4\n")
        .replace("save_steps: 10", "save_steps: 2")
    )
    config = quickstart_variant(project, "resumable", short)
    bundle, _ = compile_and_train(project, "examples/resumable.yaml", "build/resumable")
    output = bundle / "output"
    config.write_text(short.replace("      r: 8 ", "      r: 16 "), encoding="utf-8")
    recompiled = lfm("compile", "examples/resumable.yaml", "-o", "build/resumable", cwd=project)
    assert recompiled.stderr.splitlines()[-1] == (
        "warning: build/resumable/output holds checkpoints of the previous config "
        "(model_config.fine_tuning.parameters.r: 8 -> 16); train.py will not resume them: "
        "move or delete that folder to train from scratch"
    )
    refused = run_train(project, "build/resumable")
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines()[-1] == (
        f"error: {output} holds checkpoints of another config "
        "(model_config.fine_tuning.parameters.r: 8 -> 16), which this one cannot resume: "
        "move or delete that folder to train from scratch, or set "
        "fine_tuning.training.output_dir to train beside it"
    )
    assert sorted(p.name for p in output.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]
    config.write_text(short.replace("max_steps: 4", "max_steps: 6"), encoding="utf-8")
    _, longer = compile_and_train(project, "examples/resumable.yaml", "build/resumable")
    assert f"Resuming training from checkpoint {output / 'checkpoint-4'}" in longer.stderr
    steps = [json.loads(line)["step"] for line in (output / "metrics.jsonl").open()]
    assert steps == [1, 2, 3, 4, 5, 6]


def test_an_alert_that_stops_the_run_fails_train_py_and_a_rerun_resumes(project):
    """action: stop saves the adapter and a checkpoint, records why, and exits non-zero."""
    quickstart_variant(
        project,
        "stopped",
        quickstart_text(project)
        + "  monitoring:\n    alerting:\n      loss_threshold: 0.001\n      action: stop\n",
    )
    lfm("compile", "examples/stopped.yaml", "-o", "build/stopped", cwd=project)
    output = project / "build" / "stopped" / "output"

    # 24 steps, warmup 2: the first full 10-log window after warmup ends at step 12.
    first = run_train(project, "build/stopped")
    assert first.returncode == 1, first.stderr[-3000:]
    last_line = first.stderr.strip().splitlines()[-1]
    assert last_line.startswith(
        "error: training stopped at step 12 of 24 by the loss_threshold alert: training loss "
    ), last_line
    assert last_line.endswith(
        "; the step-12 checkpoint and adapter are in build/stopped/output/; "
        "running train.py again resumes from there (and stops again while the alert holds)"
    ), last_line
    assert "Traceback" not in first.stderr
    assert (output / "adapter_config.json").is_file()
    assert (output / "tokenizer_config.json").is_file()
    assert (output / "checkpoint-12" / "trainer_state.json").is_file()
    metrics = json.loads((output / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["global_step"] == 12
    assert metrics["stopped_by_alert"]["alert"] == "loss_threshold"
    assert metrics["stopped_by_alert"]["step"] == 12

    # Run again: it resumes from checkpoint-12 with the same 10-log window, so the alert,
    # still true, stops it after one more step (not after ten more).
    second = run_train(project, "build/stopped")
    assert second.returncode == 1, second.stderr[-3000:]
    assert "resum" in (second.stdout + second.stderr).lower()
    assert "error: training stopped at step 13 of 24 " in second.stderr.strip().splitlines()[-1]
    metrics = json.loads((output / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["global_step"] == 13 and metrics["stopped_by_alert"]["step"] == 13
    sent = [json.loads(line) for line in (output / "alerts.jsonl").read_text().splitlines()]
    assert [(alert["alert"], alert["step"]) for alert in sent] == [
        ("loss_threshold", 12),
        ("loss_threshold", 13),
    ]


def test_ctrl_c_and_a_multi_process_bundle_started_as_one_process(project):
    """`python train.py` on a DDP bundle says how to launch it; Ctrl-C ends in one line."""
    text = quickstart_text(project).replace("epochs: 4", "epochs: 40")
    quickstart_variant(project, "ddp", text + "  distributed: {strategy: ddp, gpus: 2}\n")
    compiled = lfm("compile", "examples/ddp.yaml", "-o", "build/ddp", cwd=project)
    assert compiled.stdout.strip().endswith(
        "run: accelerate launch --config_file build/ddp/accelerate.yaml build/ddp/train.py"
    )
    run = subprocess.Popen(
        [sys.executable, "build/ddp/train.py"],
        cwd=project,
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for(project / "build" / "ddp" / "output" / "metrics.jsonl", run, "its first step")
    run.send_signal(signal.SIGINT)
    _, err = run.communicate(timeout=120)
    assert run.returncode == 1
    assert "[lfm] this bundle is for 2 processes but runs as one" in err
    assert err.strip().splitlines()[-1] == (
        "interrupted: run train.py again to resume from the newest checkpoint"
    )
    assert "Traceback" not in err


def test_lfm_serve_answers_with_the_trained_adapter(project, quickstart):
    """The journey's next step: `lfm serve CONFIG` serves the base and the adapter training
    wrote, and the trained adapter answers as transformers does with it, unlike the base."""
    pytest.importorskip("starlette")
    openai = pytest.importorskip("openai")
    from lfm.runtime.render import ALPACA_PROMPT
    from lfm_server import serving
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    # A question of the training data, in the prompt format it was trained with.
    prompt = ALPACA_PROMPT.format(instruction="What does `lfm compile` do?")
    with serving("examples/quickstart.yaml", cwd=project, env=ENV) as server:
        client = openai.OpenAI(base_url=server.v1, api_key="unused", max_retries=0)
        assert {m.id for m in client.models.list().data} == {"tiny-model", "quickstart"}
        answers = {
            model: client.completions.create(
                model=model, prompt=prompt, max_tokens=24, temperature=0
            )
            .choices[0]
            .text
            for model in ("tiny-model", "quickstart")
        }
    assert answers["quickstart"] != answers["tiny-model"]
    base_dir = project / "examples" / "tiny-model"
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    tuned = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(base_dir), quickstart / "output"
    ).eval()
    ids = tokenizer(prompt, return_tensors="pt")
    out = tuned.generate(**ids, max_new_tokens=24, do_sample=False)
    expected = tokenizer.decode(out[0, ids.input_ids.shape[1] :], skip_special_tokens=True)
    assert answers["quickstart"] == expected

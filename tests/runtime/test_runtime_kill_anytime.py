"""A run SIGKILLed at random moments, saving every step, never leaves a broken checkpoint-N.

Slow (several training processes): CI runs it in the `-m slow` step.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ENV = {
    **os.environ,
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


@pytest.mark.slow
def test_kills_at_random_moments_never_leave_a_broken_checkpoint(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    rows = [{"instruction": f"Say {w}", "output": w} for w in ["red", "blue", "green", "gold"] * 6]
    (tmp_path / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "run.yaml").write_text(
        "model_config:\n"
        "  name: kill\n"
        f"  base_model: {tiny_model_dir}\n"
        "  fine_tuning:\n"
        "    method: lora\n"
        "    training: {max_steps: 40, batch_size: 2, save_steps: 1, save_total_limit: 2}\n"
        "  dataset:\n"
        "    source: {type: local, path: ./data.jsonl}\n"
        "    validation: {split_ratio: 0}\n"
    )
    subprocess.run(
        [sys.executable, "-m", "lfm.cli", "compile", "run.yaml", "-o", "bundle"],
        cwd=tmp_path,
        env=ENV,
        check=True,
        capture_output=True,
    )
    output = tmp_path / "bundle" / "output"
    rng = random.Random(0)
    for _ in range(4):
        child = subprocess.Popen(
            [sys.executable, "bundle/train.py"],
            cwd=tmp_path,
            env=ENV,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 300
        while not list(output.glob("checkpoint-*")) and time.monotonic() < deadline:
            time.sleep(0.05)  # wait until saving has started
        time.sleep(rng.uniform(0.0, 2.0))
        child.send_signal(signal.SIGKILL)
        child.wait()
        for checkpoint in output.glob("checkpoint-*"):  # every visible checkpoint is whole
            json.loads((checkpoint / "trainer_state.json").read_text())
            assert (checkpoint / "adapter_model.safetensors").exists()
            assert (checkpoint / "optimizer.pt").exists()
    done = subprocess.run(
        [sys.executable, "bundle/train.py"], cwd=tmp_path, env=ENV, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["global_step"] == 40
    steps = [
        json.loads(line)["step"] for line in (output / "metrics.jsonl").read_text().splitlines()
    ]
    assert steps == list(range(1, 41))

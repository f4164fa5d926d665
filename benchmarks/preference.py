"""DPO with LoRA on a real model, lfm's bundle beside a plain TRL script on the same pairs.

The pairs come from the Python tutorial the documents example uses: `lfm dataset create` makes
its question/answer records (offline generator), and each question gets its own answer as
chosen and another question's answer as rejected (a fluent answer to the wrong question), in
TRL's conversational form. 20% of the pairs are held out. lfm's run is the bundle a user gets
from `lfm compile` (TRL's DPOTrainer with lfm's checkpoints, metrics and held-out scoring); the
plain run is the TRL script a user would write by hand, with the same model, LoRA, DPOConfig
values, pairs and split (and the same fp32 precision: TRL's configs default to bf16, which a
plain script would otherwise get on a CPU with bf16 support). Records for each: wall time, train_runtime, pairs and tokens per
second; for lfm's, on the held-out pairs before and after training: preference accuracy and
mean per-token log-probability margin (preference_eval.json), and TRL's evaluation of the DPO
reward (margin and accuracy against the reference, 0 at the start by construction).

    lfm dev real-model MODEL_DIR                      # once: SmolLM2-135M-Instruct, offline
    python benchmarks/preference.py MODEL_DIR         # about 10 minutes on 2 CPU cores

Writes benchmarks/results/preference.json and .md (or --out and the .md beside it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DOCUMENTS = HERE.parent / "examples" / "documents_to_model" / "tutorial"
RESULTS = HERE / "results" / "preference.json"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
SETTINGS = {"steps": 20, "batch": 8, "learning_rate": 2e-4, "beta": 0.1, "r": 16, "max_length": 192}

CONFIG = """\
model_config:
  name: dpo_bench
  version: 0.1.0
  base_model: {model}
  fine_tuning:
    method: lora
    objective: dpo
    parameters:
      r: {r}
      lora_alpha: {alpha}
      lora_dropout: 0.0
      target_modules: [q_proj, k_proj, v_proj, o_proj]
    preference: {{beta: {beta}, loss_type: sigmoid}}
    training:
      max_steps: {steps}
      batch_size: {batch}
      learning_rate: {learning_rate}
      lr_scheduler: constant
      warmup_steps: 0
      logging_steps: 1
      save_steps: 1000
      precision: fp32
  dataset:
    source: {{type: local, path: ./pairs.jsonl}}
    preprocessing: {{format: preference, max_length: {max_length}}}
    validation: {{split_ratio: 0.2}}
"""

# The script a user would write with TRL alone: the same values, the same split.
PLAIN = """\
import json, sys, time
from datasets import Dataset
from peft import LoraConfig
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import DPOConfig, DPOTrainer

model_dir, steps, batch, lr, beta, r, max_length = sys.argv[1:8]
rows = [json.loads(line) for line in open("pairs.jsonl")]
split = Dataset.from_list(rows).train_test_split(test_size=0.2, seed=42)
tokenizer = AutoTokenizer.from_pretrained(model_dir)
model = AutoModelForCausalLM.from_pretrained(model_dir)
args = DPOConfig(
    output_dir="plain-output", max_steps=int(steps), per_device_train_batch_size=int(batch),
    per_device_eval_batch_size=int(batch), learning_rate=float(lr), lr_scheduler_type="constant",
    warmup_steps=0, logging_steps=1, save_steps=1000, eval_strategy="epoch", seed=42,
    report_to=[], beta=float(beta), loss_type=["sigmoid"], max_length=int(max_length),
    disable_tqdm=True, use_cpu=True, bf16=False, fp16=False,  # as the config's precision: fp32
)
peft_config = LoraConfig(r=int(r), lora_alpha=2 * int(r), lora_dropout=0.0,
                         target_modules=["q_proj", "k_proj", "v_proj", "o_proj"], task_type="CAUSAL_LM")
trainer = DPOTrainer(model=model, args=args, train_dataset=split["train"], eval_dataset=split["test"],
                     processing_class=tokenizer, peft_config=peft_config)
result = trainer.train()
trainer.save_model("plain-output")
print(json.dumps({"train_runtime": result.metrics["train_runtime"]}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path, help="SmolLM2-135M-Instruct (lfm dev real-model DIR)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--keep", type=Path, help="Run in this folder and keep it.")
    args = parser.parse_args()
    if not (args.model / "config.json").is_file():
        sys.exit(f"{args.model} holds no model: run `lfm dev real-model {args.model}` first")
    work = args.keep or Path(tempfile.mkdtemp(prefix="lfm-dpo-"))
    try:
        result = run(args.model.resolve(), work)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(table(result))
    print(table(result))
    return 0 if result["learned"] else 1


def run(model: Path, work: Path) -> dict[str, Any]:
    """Both runs on the same pairs, and the figures side by side."""
    pairs = document_pairs(model, work)
    ours = train_with_lfm(model, work, pairs)
    s = SETTINGS
    (work / "plain.py").write_text(PLAIN)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "plain.py", str(model), *(str(s[k]) for k in
         ("steps", "batch", "learning_rate", "beta", "r", "max_length"))],
        cwd=work, env=ENV, check=True, capture_output=True, text=True,
    )  # fmt: skip
    plain_wall = time.perf_counter() - started
    plain_runtime = json.loads(done.stdout.strip().splitlines()[-1])["train_runtime"]
    tokens_per_pair = pair_tokens(model, pairs)
    processed = s["steps"] * s["batch"]
    ours["pairs_per_second"] = round(processed / ours["train_runtime"], 3)
    ours["tokens_per_second"] = round(processed * tokens_per_pair / ours["train_runtime"], 1)
    before, after = ours["before"], ours["after"]
    return {
        "model": model.name,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, no GPU",
        "settings": s,
        "pairs": {"total": len(pairs), "held_out": before["pairs"]},
        "tokens_per_pair": round(tokens_per_pair, 1),
        "lfm": ours,
        "plain_trl": {
            "wall_seconds": round(plain_wall, 1),
            "train_runtime": round(plain_runtime, 1),
            "pairs_per_second": round(processed / plain_runtime, 3),
            "tokens_per_second": round(processed * tokens_per_pair / plain_runtime, 1),
        },
        "learned": after["preference_accuracy"] > before["preference_accuracy"]
        and after["mean_logp_margin"] > before["mean_logp_margin"],
    }


def train_with_lfm(model: Path, work: Path, pairs: list[dict[str, Any]]) -> dict[str, Any]:
    """The bundle a user compiles from the config, run as they run it; what it recorded."""
    (work / "pairs.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pairs))
    s = SETTINGS
    (work / "dpo.yaml").write_text(CONFIG.format(model=model, alpha=2 * s["r"], **s))
    subprocess.run(
        [sys.executable, "-m", "lfm.cli", "compile", "dpo.yaml", "-o", "bundle"],
        cwd=work, env=ENV, check=True, capture_output=True,
    )  # fmt: skip
    started = time.perf_counter()
    subprocess.run([sys.executable, "bundle/train.py"], cwd=work, env=ENV, check=True)
    wall = time.perf_counter() - started
    output = work / "bundle" / "output"
    scored = json.loads((output / "preference_eval.json").read_text())
    summary = json.loads((output / "metrics.json").read_text())
    steps = [json.loads(line) for line in (output / "metrics.jsonl").read_text().splitlines()]
    evals = [json.loads(line) for line in (output / "evals.jsonl").read_text().splitlines()]
    return {
        "wall_seconds": round(wall, 1),
        "train_runtime": round(summary["train_runtime"], 1),
        "before": scored["before"],
        "after": scored["after"],
        "last_train_reward_margin": steps[-1].get("rewards/margins"),
        "held_out_dpo_reward": {
            key: evals[-1].get(f"eval_rewards/{key}") for key in ("margins", "accuracies")
        },
        "held_out_dpo_loss": [e.get("eval_loss") for e in evals],
    }


def document_pairs(model: Path, work: Path) -> list[dict[str, Any]]:
    """The tutorial's Q&A records as pairs: each answer chosen for its own question and
    rejected for the question half the dataset away."""
    work.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "lfm.cli", "dataset", "create", "--source", str(DOCUMENTS),
         "--chunk-size", "256", "--chunk-overlap", "32", "--tokenizer", str(model),
         "--split-ratio", "0", "-o", "qa"],
        cwd=work, env=ENV, check=True, capture_output=True,
    )  # fmt: skip
    records = [json.loads(line) for line in (work / "qa" / "train.jsonl").read_text().splitlines()]
    half = len(records) // 2
    return [
        {
            "prompt": [{"role": "user", "content": record["instruction"]}],
            "chosen": [{"role": "assistant", "content": record["output"]}],
            "rejected": [
                {"role": "assistant", "content": records[(i + half) % len(records)]["output"]}
            ],
        }
        for i, record in enumerate(records)
    ]


def pair_tokens(model: Path, pairs: list[dict[str, Any]]) -> float:
    """Mean tokens of a pair's two sequences (prompt + chosen, prompt + rejected), as TRL
    tokenizes them: the measure both runs' tokens per second use."""
    from lfm.runtime.preference import completion_tokens
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model)
    total = 0
    for pair in pairs:
        for side in ("chosen", "rejected"):
            prompt, completion = completion_tokens(tokenizer, pair["prompt"], pair[side])
            total += len(prompt) + len(completion)
    return total / len(pairs)


def table(r: dict[str, Any]) -> str:
    before, after = r["lfm"]["before"], r["lfm"]["after"]
    return (
        f"# DPO with LoRA on {r['model']} ({r['machine']})\n\n"
        f"{r['pairs']['total']} pairs, {r['pairs']['held_out']} held out; "
        f"{r['settings']['steps']} steps of {r['settings']['batch']} pairs.\n\n"
        "| | lfm bundle | plain TRL script |\n|---|---|---|\n"
        f"| wall time (s) | {r['lfm']['wall_seconds']} | {r['plain_trl']['wall_seconds']} |\n"
        f"| train_runtime (s) | {r['lfm']['train_runtime']} | {r['plain_trl']['train_runtime']} |\n"
        f"| pairs/s | {r['lfm']['pairs_per_second']} | {r['plain_trl']['pairs_per_second']} |\n"
        f"| tokens/s | {r['lfm']['tokens_per_second']} | {r['plain_trl']['tokens_per_second']} |\n\n"
        "Held-out pairs (lfm's preference_eval.json):\n\n"
        "| | before | after |\n|---|---|---|\n"
        f"| preference accuracy | {before['preference_accuracy']:.3f} | "
        f"{after['preference_accuracy']:.3f} |\n"
        f"| mean log-prob margin per token | {before['mean_logp_margin']:+.4f} | "
        f"{after['mean_logp_margin']:+.4f} |\n\n"
        f"TRL's held-out DPO reward at the end (0 at the start: the policy is the reference): "
        f"margin {r['lfm']['held_out_dpo_reward']['margins']}, accuracy "
        f"{r['lfm']['held_out_dpo_reward']['accuracies']}; held-out DPO loss per evaluation: "
        f"{r['lfm']['held_out_dpo_loss']}\n"
    )


if __name__ == "__main__":
    raise SystemExit(main())

"""The baseline: a plain Hugging Face Trainer + peft script, written the way people write it.

Alpaca prompt, response-only labels, batches padded to the longest example
(DataCollatorForSeq2Seq), default TrainingArguments otherwise. The only additions are for
measurement: a forward pre-hook counting real and padded tokens, and a JSON result file.

    python benchmarks/plain_hf_train.py --model DIR --data FILE.jsonl --out DIR \
        [--method lora|full] [--steps 60] [--batch 8] [--seq 256] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time

import torch
from datasets import load_dataset
from peft import LoraConfig, get_peft_model
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    DataCollatorForSeq2Seq,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)

PROMPT = (
    "Below is an instruction that describes a task{context}. Write a response that "
    "appropriately completes the request.\n\n### Instruction:\n{instruction}\n\n{input}"
    "### Response:\n"
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--method", choices=["lora", "full"], default="lora")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=256)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--logging-steps", type=int, default=10)
    parser.add_argument("--bf16", action="store_true")
    args = parser.parse_args()

    tokenizer = AutoTokenizer.from_pretrained(args.model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(
        args.model, dtype=torch.bfloat16 if args.bf16 and args.method == "lora" else torch.float32
    )
    if args.method == "lora":
        config = LoraConfig(
            r=args.rank,
            lora_alpha=2 * args.rank,
            lora_dropout=0.0,
            target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
            task_type="CAUSAL_LM",
        )
        model = get_peft_model(model, config)

    def tokenize(row: dict) -> dict:
        context = ", paired with an input that provides further context" if row["input"] else ""
        extra = f"### Input:\n{row['input']}\n\n" if row["input"] else ""
        prompt = PROMPT.format(context=context, instruction=row["instruction"], input=extra)
        prompt_ids = tokenizer(prompt)["input_ids"]
        answer_ids = tokenizer(row["output"] + tokenizer.eos_token, add_special_tokens=False)[
            "input_ids"
        ]
        input_ids = (prompt_ids + answer_ids)[: args.seq]
        labels = ([-100] * len(prompt_ids) + answer_ids)[: args.seq]
        return {"input_ids": input_ids, "attention_mask": [1] * len(input_ids), "labels": labels}

    dataset = load_dataset("json", data_files=args.data, split="train")
    dataset = dataset.map(tokenize, remove_columns=dataset.column_names)

    # Measurement only. Real tokens add up on the device and are read once, after training:
    # a read per step would make every step wait for the GPU, slowing the baseline.
    counter: dict = {"real": 0, "total": 0}

    def count(module, _args, kwargs):
        if module.training and kwargs.get("attention_mask") is not None:
            counter["real"] = counter["real"] + kwargs["attention_mask"].sum()
            counter["total"] += kwargs["attention_mask"].numel()

    model.register_forward_pre_hook(count, with_kwargs=True)

    class Timer(TrainerCallback):
        """Seconds from the start of the loop to the last log, timed as lfm's metrics are."""

        def on_train_begin(self, *a, **k):
            self.start = self.last_log = time.perf_counter()

        def on_log(self, *a, logs=None, **k):
            if logs and "loss" in logs:
                self.last_log = time.perf_counter()

    timer = Timer()
    training_args = TrainingArguments(
        output_dir=args.out,
        max_steps=args.steps,
        per_device_train_batch_size=args.batch,
        learning_rate=args.lr,
        logging_steps=min(args.logging_steps, args.steps),
        save_strategy="no",
        report_to="none",
        bf16=args.bf16,
        seed=42,
    )
    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=dataset,
        data_collator=DataCollatorForSeq2Seq(tokenizer, padding=True),
        callbacks=[timer],
    )
    result = trainer.train()
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    peak_gpu = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None
    out = {
        "train_runtime": result.metrics["train_runtime"],
        "seconds_to_last_log": timer.last_log - timer.start,
        "real_tokens": int(counter["real"]),
        "total_tokens": counter["total"],
        # The mean over the last 10 steps (a log averages the steps since the previous one).
        "final_loss": statistics.mean(losses[-max(1, 10 // args.logging_steps) :])
        if losses
        else None,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "gpu_peak_mb": peak_gpu,
    }
    with open(f"{args.out}/result.json", "w", encoding="utf-8") as handle:
        json.dump(out, handle)


if __name__ == "__main__":
    main()

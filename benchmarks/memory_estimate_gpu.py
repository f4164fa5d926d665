"""Estimated vs measured peak GPU memory (torch.cuda.max_memory_allocated), on a CUDA machine.

A 0.9B-parameter random Llama is built on the GPU for each run (bf16 base under adapters; fp32
master weights with bf16 autocast for full fine-tuning, as train.py does), trained for a few
steps, and its peak allocation compared with lfm's estimate. Prints a table and writes
$OUT/memory_estimate_gpu.json (or benchmarks/results/).

    python benchmarks/memory_estimate_gpu.py
"""

from __future__ import annotations

import gc
import json
import os
from pathlib import Path

import torch
from lfm.compiler.memory import GIB, Run, estimate, shape_from_config
from peft import IA3Config, LoraConfig, get_peft_model
from transformers import LlamaConfig, LlamaForCausalLM

SHAPE = {
    "hidden_size": 2048,
    "intermediate_size": 5504,
    "num_hidden_layers": 16,
    "num_attention_heads": 16,
    "num_key_value_heads": 16,
    "vocab_size": 32000,
}
BATCH, SEQUENCE, STEPS = 4, 1024, 3
RUNS = [("full", False), ("full", True), ("lora", False), ("lora", True), ("adapters", True)]


def measure(method: str, checkpointing: bool) -> int:
    torch.manual_seed(0)
    dtype = torch.float32 if method == "full" else torch.bfloat16
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    start = torch.cuda.memory_allocated()
    with torch.device("cuda"):
        model = LlamaForCausalLM(LlamaConfig(**SHAPE, tie_word_embeddings=False)).to(dtype)
    model.train()
    if checkpointing:
        model.gradient_checkpointing_enable({"use_reentrant": False})
        model.enable_input_require_grads()
    if method == "lora":
        model = get_peft_model(
            model, LoraConfig(r=16, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
        )
    elif method == "adapters":
        model = get_peft_model(
            model,
            IA3Config(
                target_modules=["k_proj", "v_proj", "down_proj"],
                feedforward_modules=["down_proj"],
                task_type="CAUSAL_LM",
            ),
        )
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    ids = torch.randint(0, SHAPE["vocab_size"], (BATCH, SEQUENCE), device="cuda")
    for _ in range(STEPS):
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    peak = torch.cuda.max_memory_allocated() - start
    del model, optimizer, loss
    gc.collect()
    torch.cuda.empty_cache()
    return peak


def main() -> None:
    shape = shape_from_config({**SHAPE, "model_type": "llama"})
    assert shape is not None
    rows = []
    for method, checkpointing in RUNS:
        measured = measure(method, checkpointing)
        guess = estimate(
            shape, Run(method, True, BATCH, SEQUENCE, checkpointing, "adamw_torch", 16, 2)
        ).total
        rows.append(
            {
                "method": method,
                "gradient_checkpointing": checkpointing,
                "estimated_gib": round(guess / GIB, 2),
                "measured_gib": round(measured / GIB, 2),
                "estimate_over_measured": round(guess / measured, 2),
            }
        )
        print(
            f"{method:<9} ckpt={checkpointing!s:<5} estimated {guess / GIB:7.2f} GiB  measured {measured / GIB:7.2f} GiB"
            f"  ratio {guess / measured:.2f}",
            flush=True,
        )
    out = (
        Path(os.environ.get("OUT", Path(__file__).parent / "results")) / "memory_estimate_gpu.json"
    )
    payload = {
        "gpu": torch.cuda.get_device_name(),
        "parameters": shape.parameters,
        "batch": BATCH,
        "sequence": SEQUENCE,
        "rows": rows,
    }
    out.write_text(json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    main()

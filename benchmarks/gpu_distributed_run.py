"""Run one emitted train.py in this process and record peak GPU memory and throughput.

    torchrun --nproc_per_node 1 benchmarks/gpu_distributed_run.py NAME BUNDLE_DIR OUT_DIR

Writes OUT_DIR/NAME.json: peak memory allocated/reserved by torch on this GPU, the run's
tokens per second and runtime (from the bundle's metrics.json), and the first and last loss.
`build-model` and `build-data` subcommands make the shared model and dataset beforehand.
"""

from __future__ import annotations

import json
import os
import random
import runpy
import sys
from pathlib import Path

GIB = 1024**3


def build_model(out: Path) -> None:
    """lfm's tiny-model tokenizer, with a bigger random Llama (hidden 1024, 8 layers)."""
    import torch
    from lfm.runtime.tiny import build_tiny_model
    from transformers import LlamaConfig, LlamaForCausalLM

    build_tiny_model(out, pretrain_steps=0, overwrite=True)
    small = LlamaConfig.from_pretrained(out)
    config = LlamaConfig(
        hidden_size=1024,
        intermediate_size=2816,
        num_hidden_layers=8,
        num_attention_heads=16,
        num_key_value_heads=4,
        vocab_size=small.vocab_size,
        max_position_embeddings=2048,
        tie_word_embeddings=False,
        bos_token_id=small.bos_token_id,
        eos_token_id=small.eos_token_id,
        pad_token_id=small.pad_token_id,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(out)


def build_data(out: Path, records: int = 512) -> None:
    """Alpaca records of about 1,000 tokens each, from the tiny model's corpus."""
    from lfm.runtime.tiny_corpus import lines

    corpus, rng = lines(), random.Random(0)
    with out.open("w", encoding="utf-8") as f:
        for _ in range(records):
            text = " ".join(rng.choice(corpus) for _ in range(40))
            f.write(json.dumps({"instruction": rng.choice(corpus), "input": "", "output": text}))
            f.write("\n")


def run(name: str, bundle: Path, out_dir: Path) -> None:
    import torch

    cuda = torch.cuda.is_available()  # False only in a CPU dry run of this script
    sys.argv = [str(bundle / "train.py")]
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    runpy.run_path(str(bundle / "train.py"), run_name="__main__")
    if os.environ.get("RANK", "0") != "0":
        return
    metrics = json.loads((bundle / "output" / "metrics.json").read_text())
    losses = [s["loss"] for s in metrics["steps"]]
    result = {
        "name": name,
        "device": torch.cuda.get_device_name() if cuda else "cpu",
        "torch": torch.__version__,
        "peak_memory_allocated_gib": round(torch.cuda.max_memory_allocated() / GIB, 3)
        if cuda
        else None,
        "peak_memory_reserved_gib": round(torch.cuda.max_memory_reserved() / GIB, 3)
        if cuda
        else None,
        "tokens_per_second": metrics["tokens_per_second"],
        "train_runtime_s": metrics["train_runtime"],
        "steps": metrics["global_step"],
        "loss_first": losses[0] if losses else None,
        "loss_last": losses[-1] if losses else None,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "build-model":
        build_model(Path(sys.argv[2]))
    elif command == "build-data":
        build_data(Path(sys.argv[2]))
    else:
        run(command, Path(sys.argv[2]), Path(sys.argv[3]))

"""Packed attention, side by side: what one LoRA training step costs with each attention.

One process, one random-initialized Llama (the ``small`` shape of train_throughput.py by
default: hidden 1024, 8 layers, vocab 32000), one batch of 8 Alpaca-length examples, and for
each arm a forward + backward + loss read, timed over a few steps after a warm-up:

- ``padded``: the batch padded to its longest example, plain sdpa (what plain HF does);
- ``per_example``: packed, lfm's ``lfm_sdpa_varlen`` (one sdpa call per example per layer;
  lfm's choice on a CPU);
- ``native_sdpa``: packed, transformers' own packed-sequence mask with sdpa (one mask per
  forward pass, one kernel per layer; lfm's choice on a CUDA GPU).

Besides time it counts, per step, the torch operators dispatched (on a GPU each is at least
one kernel launch, so a launch-bound small model pays for each) and the host reads
(``Tensor.tolist``/``item``/``bool``: on a GPU each waits for every queued kernel). On a CPU those
counts are the GPU-relevant evidence; the times are this machine's.

    python benchmarks/packed_attention.py [--device cpu|cuda] [--shape small|tiny] [--steps 3]

Writes benchmarks/results/packed_attention_<device>.json (or --out).
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import time
from pathlib import Path
from typing import Any

import torch
from lfm.runtime import packing
from peft import LoraConfig, get_peft_model
from transformers import LlamaConfig, LlamaForCausalLM

HERE = Path(__file__).resolve().parent
SHAPES = {
    "small": {"hidden_size": 1024, "intermediate_size": 2816, "num_hidden_layers": 8},
    "tiny": {"hidden_size": 256, "intermediate_size": 688, "num_hidden_layers": 4},
}


class _HostReads:
    """Counts Tensor.tolist/item/bool calls while active (each is a device sync on CUDA)."""

    def __init__(self) -> None:
        self.count = 0
        self._saved: dict[str, Any] = {}

    def __enter__(self) -> _HostReads:
        for name in ("tolist", "item", "__bool__"):
            original = getattr(torch.Tensor, name)
            self._saved[name] = original

            def counted(tensor: Any, *a: Any, _original: Any = original, **k: Any) -> Any:
                self.count += 1
                return _original(tensor, *a, **k)

            setattr(torch.Tensor, name, counted)
        return self

    def __exit__(self, *exc: object) -> None:
        for name, original in self._saved.items():
            setattr(torch.Tensor, name, original)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--shape", choices=sorted(SHAPES), default="small")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=512)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--out")
    args = parser.parse_args()

    torch.manual_seed(0)
    dtype = torch.bfloat16 if args.device == "cuda" else torch.float32
    config = LlamaConfig(
        **SHAPES[args.shape],
        num_attention_heads=16 if args.shape == "small" else 8,
        num_key_value_heads=8 if args.shape == "small" else 4,
        vocab_size=32000,
        attn_implementation="sdpa",
    )
    base = LlamaForCausalLM(config).to(args.device, dtype)
    model = get_peft_model(
        base,
        LoraConfig(
            r=16,
            lora_alpha=32,
            target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
            task_type="CAUSAL_LM",
        ),
    )
    model.train()
    packing._register_per_example_sdpa()
    packing.disable_cache_in_training(model)

    rng = random.Random(0)
    # Alpaca-like lengths: most examples well under the cap, a few at it.
    lengths = [min(args.seq, int(rng.lognormvariate(5.3, 0.5))) for _ in range(args.batch)]
    examples = []
    for n in lengths:
        ids = [rng.randrange(10, 32000) for _ in range(n)]
        examples.append({"input_ids": ids, "labels": ids})
    packed = packing.collator()(examples)
    longest = max(lengths)
    padded = {  # right padding to the longest, as DataCollatorForSeq2Seq does
        "input_ids": torch.tensor(
            [e["input_ids"] + [0] * (longest - len(e["input_ids"])) for e in examples]
        ),
        "attention_mask": torch.tensor([[1] * n + [0] * (longest - n) for n in lengths]),
        "labels": torch.tensor(
            [e["labels"] + [-100] * (longest - len(e["labels"])) for e in examples]
        ),
    }
    arms = {
        "padded": ("sdpa", padded),
        "per_example": (packing.PER_EXAMPLE_SDPA, packed),
        "native_sdpa": ("sdpa", packed),
    }

    def step(batch: dict[str, Any]) -> float:
        inputs = {k: v.to(args.device) if hasattr(v, "to") else v for k, v in batch.items()}
        model.zero_grad(set_to_none=True)
        loss = model(**inputs).loss
        loss.backward()
        return loss.item()

    results = {}
    for name, (attention, batch) in arms.items():
        base.set_attn_implementation(attention)
        step(batch)  # warm-up
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU]) as prof, _HostReads() as reads:
            loss = step(batch)
        ops = sum(e.count for e in prof.key_averages() if e.key.startswith("aten::"))
        if args.device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(args.steps):
            step(batch)
        if args.device == "cuda":
            torch.cuda.synchronize()
        seconds = (time.perf_counter() - start) / args.steps
        results[name] = {
            "attention": attention,
            "loss": round(loss, 6),
            "seconds_per_step": round(seconds, 4),
            "real_tokens_per_second": round(sum(lengths) / seconds, 1),
            "torch_ops_per_step": ops,
            "host_reads_per_step": reads.count,
            "tokens_in_batch": int(batch["input_ids"].numel()),
        }
        print(name, json.dumps(results[name]), flush=True)

    out = Path(args.out or HERE / "results" / f"packed_attention_{args.device}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "what": __doc__.splitlines()[0],
        "settings": {**vars(args), "lengths": lengths, "machine": platform.machine()},
        "torch": torch.__version__,
        "arms": results,
    }
    out.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

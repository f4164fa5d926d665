"""Estimated vs measured training memory, on the CPU with a mid-sized random Llama.

For each method a fresh process loads the model (fp32), attaches the adapter and runs real
optimizer steps, measuring the tensors themselves: weights, gradients and optimizer state by
their sizes, and activations as the storage autograd saves for the backward pass (a
saved-tensors hook). The process's resident memory is not used: on a CPU it is dominated by
allocator caches and libraries. The compiler's estimate for the same run stands beside it.
Writes benchmarks/results/memory_estimate.json.

    python benchmarks/memory_estimate.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHAPE = {
    "hidden_size": 512,
    "intermediate_size": 1376,
    "num_hidden_layers": 8,
    "num_attention_heads": 8,
    "num_key_value_heads": 8,
    "vocab_size": 8000,
}
BATCH, SEQUENCE, STEPS = 4, 512, 3
METHODS = [("full", False), ("lora", False), ("lora", True), ("adapters", False)]

CHILD = r"""
import json, sys
import torch
from transformers import AutoModelForCausalLM
from peft import IA3Config, LoraConfig, get_peft_model
torch.manual_seed(0)
model_dir, method, checkpointing, batch, sequence, steps = sys.argv[1:7]
model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
if checkpointing == "1":
    model.gradient_checkpointing_enable({"use_reentrant": False})
    model.enable_input_require_grads()
if method == "lora":
    model = get_peft_model(model, LoraConfig(r=16, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
elif method == "adapters":
    model = get_peft_model(model, IA3Config(target_modules=["k_proj", "v_proj", "down_proj"],
                                            feedforward_modules=["down_proj"], task_type="CAUSAL_LM"))
model.train()  # checkpointing (and dropout) act only in training mode, as under the Trainer
trainable = [p for p in model.parameters() if p.requires_grad]
optimizer = torch.optim.AdamW(trainable, lr=1e-4)
ids = torch.randint(0, model.config.vocab_size, (int(batch), int(sequence)))
saved = {}  # storage -> bytes: what autograd keeps for the backward pass (the activations)
def pack(t):
    saved[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
    return t
def size(tensors):
    return sum(t.numel() * t.element_size() for t in tensors)
peak = {}
for _ in range(int(steps)):
    saved.clear()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = model(input_ids=ids, labels=ids).loss
    activations = sum(saved.values())
    loss.backward()
    optimizer.step()
    state = [v for s in optimizer.state.values() for v in s.values() if torch.is_tensor(v) and v.dim() > 0]
    peak = {"weights": size(model.parameters()), "gradients": size(p.grad for p in trainable),
            "optimizer": size(state), "activations": activations}
    optimizer.zero_grad()
print(json.dumps(peak))
"""


def main() -> None:
    from lfm.compiler.memory import GIB, Run, estimate, shape_from_config
    from transformers import LlamaConfig, LlamaForCausalLM

    shape = shape_from_config({**SHAPE, "model_type": "llama"})
    assert shape is not None
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        LlamaForCausalLM(LlamaConfig(**SHAPE, tie_word_embeddings=False)).save_pretrained(tmp)
        for method, checkpointing in METHODS:
            done = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    CHILD,
                    tmp,
                    method,
                    "1" if checkpointing else "0",
                    str(BATCH),
                    str(SEQUENCE),
                    str(STEPS),
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            parts = json.loads(done.stdout.strip().splitlines()[-1])
            measured = sum(parts.values())
            run = Run(method, False, BATCH, SEQUENCE, checkpointing, "adamw_torch", 16, 2)
            guess = estimate(shape, run)
            estimated = guess.total
            rows.append(
                {
                    "method": method,
                    "gradient_checkpointing": checkpointing,
                    "estimated_gib": round(estimated / GIB, 3),
                    "measured_gib": round(measured / GIB, 3),
                    "estimate_over_measured": round(estimated / measured, 2),
                    "measured_parts_gib": {k: round(v / GIB, 3) for k, v in parts.items()},
                    "estimated_parts_gib": {
                        k: round(getattr(guess, k) / GIB, 3)
                        for k in (
                            "weights",
                            "gradients",
                            "optimizer",
                            "activations",
                            "logits",
                            "overhead",
                        )
                    },
                }
            )
    print(
        f"model: {shape.parameters / 1e6:.1f}M parameters, fp32 on CPU, batch {BATCH} x {SEQUENCE} tokens"
    )
    print(f"{'method':<10} {'ckpt':<5} {'estimated':>10} {'measured':>10} {'ratio':>6}")
    for r in rows:
        print(
            f"{r['method']:<10} {str(r['gradient_checkpointing']):<5} {r['estimated_gib']:>9.3f}G "
            f"{r['measured_gib']:>9.3f}G {r['estimate_over_measured']:>6.2f}"
        )
    out = REPO / "benchmarks" / "results" / "memory_estimate.json"
    out.write_text(
        json.dumps({"shape": SHAPE, "batch": BATCH, "sequence": SEQUENCE, "rows": rows}, indent=2)
        + "\n"
    )
    print(f"wrote {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()

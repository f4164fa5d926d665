"""How many processes train, how they start and meet, and the batch they share."""

from __future__ import annotations

from ..resolve import Context
from .methods import family_of

ACCELERATE_TYPE = {
    "none": "NO",
    "ddp": "MULTI_GPU",
    "deepspeed_zero1": "DEEPSPEED",
    "deepspeed_zero2": "DEEPSPEED",
    "deepspeed_zero3": "DEEPSPEED",
    "fsdp": "FSDP",
}
ZERO_STAGE = {"deepspeed_zero1": 1, "deepspeed_zero2": 2, "deepspeed_zero3": 3}

# The transformer block of each architecture family: FSDP wraps (shards) one of these at a time.
# Families whose generations name their blocks differently (qwen2/qwen3, gemma/gemma2) are left
# out: the model's own `_no_split_modules` names them correctly at run time.
WRAP_LAYER = {
    "llama": "LlamaDecoderLayer",
    "smollm": "LlamaDecoderLayer",
    "mistral": "MistralDecoderLayer",
    "mixtral": "MixtralDecoderLayer",
    "phi-4": "Phi3DecoderLayer",
    "phi-3": "Phi3DecoderLayer",
    "phi3": "Phi3DecoderLayer",
    "phi": "PhiDecoderLayer",
    "gpt2": "GPT2Block",
    "gpt-neox": "GPTNeoXLayer",
    "pythia": "GPTNeoXLayer",
    "falcon": "FalconDecoderLayer",
    "bloom": "BloomBlock",
    "opt": "OPTDecoderLayer",
}


def process_layout(ctx: Context) -> None:
    strategy = ctx.get("distributed", "strategy") or "none"
    gpus = ctx.get("distributed", "gpus") or 1
    nodes = ctx.get("distributed", "nodes") or 1
    world = gpus * nodes
    if strategy == "none" and world > 1 and ctx.user_set("distributed", "strategy"):
        ctx.warn(
            ("distributed", "strategy"),
            f"strategy none with {world} GPUs in all: only one process trains",
            "set strategy: ddp (or a DeepSpeed/FSDP strategy) to use them all",
        )
        world = 1
    elif strategy == "none" and world > 1:
        ctx.decide(
            ("distributed", "strategy"),
            "ddp",
            "process_layout",
            f"strategy none with {world} GPUs in all: plain data parallel (DDP) uses them",
        )
    ctx.derive(
        "num_processes", world, "process_layout", f"{gpus} GPU(s) per node x {nodes} node(s)"
    )


def launcher(ctx: Context) -> None:
    """Several nodes must meet somewhere: a rendezvous host, or a PyTorchJob's master service."""
    nodes = ctx.get("distributed", "nodes") or 1
    host = ctx.get("distributed", "rendezvous", "host")
    chosen = ctx.get("distributed", "launcher") or "auto"
    if chosen == "auto":
        if ctx.get("deployment", "target") == "kubernetes":
            value, why = "kubernetes", "deployment.target is kubernetes: train on the same cluster"
        elif nodes > 1 and not host:
            value, why = (
                "kubernetes",
                f"{nodes} nodes and no distributed.rendezvous.host: a Kubeflow PyTorchJob "
                "starts them and its master service is the rendezvous",
            )
        else:
            value, why = "accelerate", "accelerate launch on each node"
        ctx.decide(("distributed", "launcher"), value, "launcher", why)
        chosen = value
    if chosen == "accelerate" and nodes > 1 and not host:
        ctx.error(
            ("distributed", "launcher"),
            f"{nodes} nodes launched with accelerate need a rendezvous: nothing tells them "
            "where the main node is",
            "set distributed.rendezvous.host (the main node's address), or launcher: kubernetes",
        )


def global_batch(ctx: Context) -> None:
    """micro-batch x accumulation x processes = the global batch; derive accumulation from it."""
    train = ("fine_tuning", "training")
    micro = ctx.get(*train, "batch_size") or 1
    world = ctx.derived.get("num_processes", 1)
    wanted = ctx.get("distributed", "global_batch_size")
    if wanted:
        per_step = micro * world
        if wanted % per_step:
            ctx.error(
                ("distributed", "global_batch_size"),
                f"global_batch_size {wanted} does not divide into micro-batches of {micro} on "
                f"{world} process(es) ({per_step} examples per accumulation step)",
                f"use a multiple of {per_step}, e.g. {max(1, wanted // per_step) * per_step}",
            )
            return
        accum = wanted // per_step
        if ctx.user_set(*train, "gradient_accumulation_steps") and accum != ctx.get(
            *train, "gradient_accumulation_steps"
        ):
            ctx.error(
                (*train, "gradient_accumulation_steps"),
                f"gradient_accumulation_steps {ctx.get(*train, 'gradient_accumulation_steps')} "
                f"disagrees with global_batch_size {wanted} = {micro} x {accum} x {world}",
                "set one of the two",
            )
            return
        ctx.decide(
            (*train, "gradient_accumulation_steps"),
            accum,
            "global_batch",
            f"global_batch_size {wanted} / (micro-batch {micro} x {world} process(es))",
        )
    accum = ctx.get(*train, "gradient_accumulation_steps") or 1
    ctx.derive(
        "global_batch_size",
        micro * accum * world,
        "global_batch",
        f"micro-batch {micro} x gradient accumulation {accum} x {world} process(es)",
    )


def fsdp_wrap_layer(ctx: Context) -> None:
    if ctx.get("distributed", "strategy") != "fsdp" or ctx.get("distributed", "fsdp", "wrap_layer"):
        return
    family = family_of(str(ctx.get("base_model") or ""))
    layer = WRAP_LAYER.get(family or "")
    if layer:
        ctx.decide(
            ("distributed", "fsdp", "wrap_layer"),
            layer,
            "fsdp_wrap_layer",
            f"the {family} family's transformer block: FSDP shards one block at a time",
        )
    else:
        ctx.derive(
            "fsdp_wrap_layer",
            None,
            "fsdp_wrap_layer",
            "architecture not known from the name: FSDP wraps the model's own _no_split_modules",
        )

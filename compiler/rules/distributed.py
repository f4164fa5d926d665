"""How many processes train, and how accelerate launches them."""

from __future__ import annotations

from ..resolve import Context

ACCELERATE_TYPE = {
    "none": "NO",
    "ddp": "MULTI_GPU",
    "deepspeed_zero1": "DEEPSPEED",
    "deepspeed_zero2": "DEEPSPEED",
    "deepspeed_zero3": "DEEPSPEED",
    "fsdp": "FSDP",
}
ZERO_STAGE = {"deepspeed_zero1": 1, "deepspeed_zero2": 2, "deepspeed_zero3": 3}


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
        strategy = "ddp"
    ctx.derive(
        "num_processes", world, "process_layout", f"{gpus} GPU(s) per node x {nodes} node(s)"
    )
    if nodes > 1:
        ctx.warn(
            ("distributed", "nodes"),
            f"{nodes} nodes: launch train.py on every node with accelerate's --machine_rank, "
            "--main_process_ip and --main_process_port",
        )

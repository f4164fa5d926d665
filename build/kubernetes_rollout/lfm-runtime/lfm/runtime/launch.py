"""What a multi-process train.py needs from its machine: the process-group backend on a CPU.

On a GPU box the defaults are right (NCCL) and these change nothing. Without a GPU, the HF
Trainer under torchrun or accelerate would start the processes but not join them (each would
train alone on the same data), and would start DeepSpeed without a backend while counting one
process. These make a CPU run real data parallelism over gloo, so a bundle can be tried, and
tested, on a laptop.
"""

from __future__ import annotations

import os
import sys

# What a launcher sets; a bare `python train.py` of a DeepSpeed bundle gets a one-process world.
_SINGLE_PROCESS = {
    "RANK": "0",
    "LOCAL_RANK": "0",
    "WORLD_SIZE": "1",
    "MASTER_ADDR": "127.0.0.1",
    "MASTER_PORT": "29500",
}


def is_main_process() -> bool:
    """The launcher's process 0 (or the only one): the process that tells the user things,
    writes shared records and logs in to trackers."""
    return os.environ.get("RANK", "0") == "0" and os.environ.get("LOCAL_RANK", "0") == "0"


def announce(message: str) -> None:
    """Tell the user, once (from the main process), what the run is doing."""
    if is_main_process():
        print(f"[lfm] {message}", file=sys.stderr, flush=True)


def cpu_only() -> bool:
    """TrainingArguments(use_cpu=...): DDP and FSDP join CPU processes over gloo when True."""
    import torch

    return not torch.cuda.is_available()


def deepspeed_state() -> dict[str, bool] | None:
    """Call before loading the model; pass the result as TrainingArguments(accelerator_config=...).

    On a GPU: None, and the Trainer sets DeepSpeed up as usual. On a CPU: the processes are
    joined over gloo for DeepSpeed here, and the Trainer is told to use that state.
    """
    if "LOCAL_RANK" not in os.environ and "WORLD_SIZE" not in os.environ:
        os.environ.update(_SINGLE_PROCESS)
    if not cpu_only():
        return None
    from accelerate import PartialState

    os.environ["ACCELERATE_USE_DEEPSPEED"] = "true"
    PartialState(backend="gloo")
    return {"use_configured_state": True}


def finish() -> None:
    """End of train.py: every rank waits for rank 0's saves, then leaves the process group.

    A rank that exits while another is still saving (a ZeRO-3 gather) or with the group still
    open can abort the whole job at shutdown. The caller drops its trainer and model first;
    the collection here frees what still held the group through reference cycles.
    """
    import gc

    import torch.distributed as dist

    gc.collect()
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()

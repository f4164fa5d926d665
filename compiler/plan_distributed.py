"""The distributed part of the plan: process layout, ds_config.json and the FSDP settings.

Every number is literal and computed once here, so train.py's TrainingArguments, ds_config.json
and accelerate.yaml cannot disagree (DeepSpeed and the HF Trainer both check the batch
arithmetic: micro-batch x gradient accumulation x world size = the global batch).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .methods.base import Arg, Code
from .rules.distributed import ACCELERATE_TYPE, ZERO_STAGE

DS_CONFIG = "ds_config.json"
DEFAULT_RENDEZVOUS_PORT = 29500
# TrainingArguments' own AdamW defaults, written into ds_config.json's optimizer block so the
# Trainer's consistency check finds the same values on both sides.
ADAM_BETAS = (0.9, 0.999)
ADAM_EPSILON = 1e-8


@dataclass(frozen=True)
class DistributedPlan:
    strategy: str
    accelerate_type: str
    launcher: str  # "accelerate" | "kubernetes"
    num_processes: int
    num_machines: int
    gpus_per_node: int
    zero_stage: int | None
    offload_optimizer: bool
    offload_parameters: bool
    rendezvous_host: str | None
    rendezvous_port: int
    micro_batch: int
    gradient_accumulation: int
    global_batch: int
    ds_config: dict[str, Any] | None  # ds_config.json, for DeepSpeed strategies
    fsdp_config: dict[str, Any] | None  # TrainingArguments(fsdp_config=...), for FSDP

    @property
    def zero3(self) -> bool:
        return self.zero_stage == 3

    @property
    def deepspeed(self) -> bool:
        return self.zero_stage is not None

    @property
    def fsdp(self) -> bool:
        return self.fsdp_config is not None

    @property
    def multi_process(self) -> bool:
        return self.strategy != "none"


def distributed_plan(cfg: dict[str, Any], derived: dict[str, Any]) -> DistributedPlan:
    d, train = cfg["distributed"], cfg["fine_tuning"]["training"]
    strategy = d["strategy"]
    stage = ZERO_STAGE.get(strategy)
    world = derived["num_processes"]
    micro, accum = train["batch_size"], train["gradient_accumulation_steps"]
    rendezvous = d.get("rendezvous", {})
    return DistributedPlan(
        strategy=strategy,
        accelerate_type=ACCELERATE_TYPE[strategy],
        launcher=d.get("launcher", "accelerate"),
        num_processes=world,
        num_machines=d["nodes"],
        gpus_per_node=d["gpus"],
        zero_stage=stage,
        offload_optimizer=d["offload_optimizer"],
        offload_parameters=d["offload_parameters"],
        rendezvous_host=rendezvous.get("host"),
        rendezvous_port=rendezvous.get("port", DEFAULT_RENDEZVOUS_PORT),
        micro_batch=micro,
        gradient_accumulation=accum,
        global_batch=micro * accum * world,
        ds_config=None if stage is None else ds_config(stage, d, train, world),
        fsdp_config=fsdp_config(d, derived) if strategy == "fsdp" else None,
    )


def ds_config(stage: int, d: dict[str, Any], train: dict[str, Any], world: int) -> dict[str, Any]:
    """DeepSpeed's config with literal values only: DeepSpeedConfig itself rejects 'auto'."""
    micro, accum = train["batch_size"], train["gradient_accumulation_steps"]
    zero: dict[str, Any] = {"stage": stage, "overlap_comm": True, "contiguous_gradients": True}
    if d["offload_optimizer"]:
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": True}
    if stage == 3:
        if d["offload_parameters"]:
            zero["offload_param"] = {"device": "cpu", "pin_memory": True}
        # save_model() then writes one full model, not per-rank shards.
        zero["stage3_gather_16bit_weights_on_model_save"] = True
    config: dict[str, Any] = {
        "train_batch_size": micro * accum * world,
        "train_micro_batch_size_per_gpu": micro,
        "gradient_accumulation_steps": accum,
        "gradient_clipping": train["max_grad_norm"],
        "bf16": {"enabled": train["precision"] == "bf16"},
        "fp16": {"enabled": train["precision"] == "fp16"},
        "zero_optimization": zero,
    }
    if d["offload_optimizer"]:
        # Offloaded optimizer state wants DeepSpeed's CPU AdamW (the torch one would crawl).
        config["optimizer"] = {
            "type": "AdamW",
            "params": {
                "lr": train["learning_rate"],
                "betas": list(ADAM_BETAS),
                "eps": ADAM_EPSILON,
                "weight_decay": train["weight_decay"],
            },
        }
    config["steps_per_print"] = max(train["logging_steps"], 1)
    config["wall_clock_breakdown"] = False
    return config


def fsdp_config(d: dict[str, Any], derived: dict[str, Any]) -> dict[str, Any]:
    """TrainingArguments(fsdp_config=...): FSDP2, wrapping one transformer block at a time."""
    settings = d.get("fsdp", {})
    config: dict[str, Any] = {
        "version": 2,
        "auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
    }
    if settings.get("wrap_layer"):
        config["transformer_layer_cls_to_wrap"] = [settings["wrap_layer"]]
    config["reshard_after_forward"] = settings.get("sharding", "full_shard") == "full_shard"
    config["state_dict_type"] = (
        "SHARDED_STATE_DICT" if settings.get("state_dict") == "sharded" else "FULL_STATE_DICT"
    )
    config["cpu_offload"] = d["offload_parameters"]
    config["cpu_ram_efficient_loading"] = True
    return config


def distributed_arguments(plan: DistributedPlan, derived: dict[str, Any]) -> list[Arg]:
    """The TrainingArguments that tie train.py to the launch: DDP, DeepSpeed or FSDP."""
    args = []
    kwargs = derived.get("gradient_checkpointing_kwargs")
    if kwargs:
        args.append(Arg("gradient_checkpointing_kwargs", kwargs))
    if plan.strategy == "ddp":
        # Frozen base weights never get gradients; DDP must not wait for them (LoRA).
        args.append(Arg("ddp_find_unused_parameters", False))
    if plan.deepspeed:
        args.append(Arg("deepspeed", Code(f'str(BUNDLE_DIR / "{DS_CONFIG}")')))
        args.append(Arg("accelerator_config", Code("accelerator_config")))
    elif plan.multi_process:
        args.append(Arg("use_cpu", Code("launch.cpu_only()")))
    if plan.fsdp:
        args.append(Arg("fsdp", True))
        args.append(Arg("fsdp_config", plan.fsdp_config))
    return args

"""ds_config.json is read by DeepSpeed's own DeepSpeedConfig, batch arithmetic included."""

from __future__ import annotations

import json

import pytest
from lfm.compiler.pipeline import compile_config

pytest.importorskip("deepspeed")


class DataParallel:
    """The world size DeepSpeedConfig checks the batch against (it asks an mpu for it)."""

    def __init__(self, world: int) -> None:
        self.world = world

    def get_data_parallel_world_size(self) -> int:
        return self.world


@pytest.fixture(scope="module")
def process_group():
    """DeepSpeedConfig reads the rank from deepspeed.comm: a one-process gloo group."""
    import deepspeed
    import torch.distributed as dist

    env = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29511", "RANK": "0", "WORLD_SIZE": "1"}
    with pytest.MonkeyPatch.context() as patch:
        for key, value in {**env, "LOCAL_RANK": "0"}.items():
            patch.setenv(key, value)
        deepspeed.init_distributed(dist_backend="gloo", auto_mpi_discovery=False)
        yield
    if dist.is_initialized():
        dist.destroy_process_group()


def compiled_ds_config(write_config, distributed: str, training: str = "{}") -> dict:
    path = write_config(
        "model_config:\n  base_model: meta-llama/Llama-3.1-8B\n"
        f"  distributed: {distributed}\n  fine_tuning:\n    training: {training}\n"
    )
    return json.loads(compile_config(path, "bundle").files["ds_config.json"])


@pytest.mark.parametrize(
    ("distributed", "training", "stage", "world"),
    [
        ("{strategy: deepspeed_zero1, gpus: 2}", "{batch_size: 2}", 1, 2),
        (
            "{strategy: deepspeed_zero2, gpus: 8, offload_optimizer: true}",
            "{batch_size: 4, gradient_accumulation_steps: 2}",
            2,
            8,
        ),
        (
            "{strategy: deepspeed_zero3, gpus: 8, nodes: 2, offload_parameters: true}",
            "{batch_size: 1}",
            3,
            16,
        ),
        ("{strategy: deepspeed_zero3, gpus: 8, global_batch_size: 256}", "{batch_size: 4}", 3, 8),
    ],
)
def test_deepspeed_parses_the_emitted_config(
    process_group, write_config, distributed, training, stage, world
):
    from deepspeed.runtime.config import DeepSpeedConfig

    data = compiled_ds_config(write_config, distributed, training)
    assert "auto" not in json.dumps(data)
    parsed = DeepSpeedConfig(data, mpu=DataParallel(world))
    assert parsed.zero_optimization_stage == stage
    assert parsed.train_batch_size == (
        parsed.train_micro_batch_size_per_gpu * parsed.gradient_accumulation_steps * world
    )
    assert parsed.bfloat16_config.enabled  # precision auto -> bf16, written literally


def test_the_global_batch_sets_gradient_accumulation(process_group, write_config):
    from deepspeed.runtime.config import DeepSpeedConfig

    data = compiled_ds_config(
        write_config,
        "{strategy: deepspeed_zero3, gpus: 8, global_batch_size: 256}",
        "{batch_size: 4}",
    )
    assert DeepSpeedConfig(data, mpu=DataParallel(8)).gradient_accumulation_steps == 8


def test_deepspeed_rejects_a_world_size_the_config_was_not_compiled_for(
    process_group, write_config
):
    """The check is real: the same file on another number of GPUs fails DeepSpeed's own test."""
    from deepspeed.runtime.config import DeepSpeedConfig

    data = compiled_ds_config(write_config, "{strategy: deepspeed_zero2, gpus: 8}")
    with pytest.raises(AssertionError, match="Check batch related parameters"):
        DeepSpeedConfig(data, mpu=DataParallel(4))

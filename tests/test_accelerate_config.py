"""accelerate.yaml is read by accelerate's own parsers, for every distributed strategy."""

import json

import pytest
from accelerate.commands.config.config_args import load_config_from_file
from accelerate.commands.launch import _validate_launch_command, launch_command_parser
from accelerate.utils import DistributedType
from lfm.compiler.pipeline import compile_config


@pytest.mark.parametrize(
    ("distributed", "expected_type", "processes"),
    [
        ("{strategy: none}", DistributedType.NO, 1),
        ("{strategy: ddp, gpus: 4}", DistributedType.MULTI_GPU, 4),
        ("{strategy: deepspeed_zero1, gpus: 2}", DistributedType.DEEPSPEED, 2),
        ("{strategy: deepspeed_zero2, gpus: 8}", DistributedType.DEEPSPEED, 8),
        (
            "{strategy: deepspeed_zero3, gpus: 8, nodes: 2, offload_optimizer: true}",
            DistributedType.DEEPSPEED,
            16,
        ),
        (
            "{strategy: deepspeed_zero3, gpus: 4, nodes: 2, launcher: accelerate,"
            " rendezvous: {host: 10.0.0.1, port: 29555}}",
            DistributedType.DEEPSPEED,
            8,
        ),
        ("{strategy: fsdp, gpus: 2}", DistributedType.FSDP, 2),
        ("{strategy: fsdp, gpus: 8, fsdp: {sharding: shard_grad_op}}", DistributedType.FSDP, 8),
    ],
)
def test_accelerate_reads_the_emitted_config(
    write_config, tmp_path, distributed, expected_type, processes
):
    path = write_config(
        f"model_config:\n  base_model: meta-llama/Llama-3.1-8B\n  distributed: {distributed}\n"
    )
    files = compile_config(path, "bundle").files
    for name in ("accelerate.yaml", "ds_config.json"):
        if name in files:
            (tmp_path / name).write_text(files[name])
    config_file = tmp_path / "accelerate.yaml"

    config = load_config_from_file(str(config_file))
    assert config.distributed_type == expected_type
    assert config.num_processes == processes
    if expected_type == DistributedType.DEEPSPEED:
        # Every DeepSpeed value lives in ds_config.json, which the yaml names.
        named = tmp_path / config.deepspeed_config["deepspeed_config_file"]
        stage = int(distributed.split("deepspeed_zero")[1][0])
        assert json.loads(named.read_text())["zero_optimization"]["stage"] == stage
        assert config.deepspeed_config["zero3_init_flag"] == (stage == 3)
    else:
        assert "ds_config.json" not in files
    if expected_type == DistributedType.FSDP:
        assert config.fsdp_config["fsdp_transformer_layer_cls_to_wrap"] == "LlamaDecoderLayer"
        shards_params = "shard_grad_op" not in distributed
        assert config.fsdp_config["fsdp_reshard_after_forward"] is shards_params
    if "rendezvous" in distributed:
        assert (config.main_process_ip, config.main_process_port) == ("10.0.0.1", 29555)

    # The launcher merges the file into its arguments and checks them as `accelerate launch` would.
    args = launch_command_parser().parse_args(["--config_file", str(config_file), "train.py"])
    args, defaults, mixed_precision_from_file = _validate_launch_command(args)
    assert args.num_processes == processes
    if expected_type == DistributedType.DEEPSPEED:
        # accelerate refuses a mixed_precision beside a deepspeed_config_file.
        assert not mixed_precision_from_file

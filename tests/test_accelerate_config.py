"""accelerate.yaml is read by accelerate's own parsers, for every distributed strategy."""

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
        ("{strategy: fsdp, gpus: 2}", DistributedType.FSDP, 2),
    ],
)
def test_accelerate_reads_the_emitted_config(
    write_config, tmp_path, distributed, expected_type, processes
):
    path = write_config(f"model_config:\n  base_model: m\n  distributed: {distributed}\n")
    files = compile_config(path, "bundle").files
    config_file = tmp_path / "accelerate.yaml"
    config_file.write_text(files["accelerate.yaml"])

    config = load_config_from_file(str(config_file))
    assert config.distributed_type == expected_type
    assert config.num_processes == processes
    if expected_type == DistributedType.DEEPSPEED:
        stage = int(distributed.split("deepspeed_zero")[1][0])
        assert config.deepspeed_config["zero_stage"] == stage

    # The launcher merges the file into its arguments and checks them as `accelerate launch` would.
    args = launch_command_parser().parse_args(["--config_file", str(config_file), "train.py"])
    args, defaults, _ = _validate_launch_command(args)
    assert args.num_processes == processes

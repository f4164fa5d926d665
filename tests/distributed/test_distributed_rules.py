"""Compile-time cross-checks of the distributed settings, as `lfm explain` reports them."""

from __future__ import annotations

import json

import pytest
from lfm.compiler.diagnostics import CompileError
from lfm.compiler.pipeline import analyze, compile_config

BASE = "model_config:\n  base_model: meta-llama/Llama-3.1-8B\n"


def messages(write_config, text: str) -> list[str]:
    try:
        analysis = analyze(write_config(BASE + text))
    except CompileError as exc:
        return [d.format() for d in exc.diagnostics]
    return [d.format() for d in analysis.diagnostics]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "  resources: {gpu: 1x_t4}\n  fine_tuning: {training: {precision: bf16}}\n",
            "error: bf16 on t4: GPUs before Ampere have no bf16",
        ),
        (
            "  fine_tuning: {method: qlora}\n  distributed: {strategy: deepspeed_zero3, gpus: 2}\n",
            "error: qlora with deepspeed_zero3",
        ),
        (
            "  fine_tuning: {method: qlora}\n  distributed: {strategy: fsdp, gpus: 2}\n",
            "error: qlora with fsdp",
        ),
        (
            "  fine_tuning: {training: {batch_size: 3}}\n"
            "  distributed: {strategy: ddp, gpus: 4, global_batch_size: 100}\n",
            "error: global_batch_size 100 does not divide into micro-batches of 3 on 4 process(es)",
        ),
        (
            "  fine_tuning: {training: {batch_size: 2, gradient_accumulation_steps: 3}}\n"
            "  distributed: {strategy: ddp, gpus: 4, global_batch_size: 64}\n",
            "error: gradient_accumulation_steps 3 disagrees with global_batch_size 64",
        ),
        (
            "  distributed: {strategy: deepspeed_zero3, gpus: 8, nodes: 2, launcher: accelerate}\n",
            "error: 2 nodes launched with accelerate need a rendezvous",
        ),
        (
            "  distributed: {strategy: ddp, gpus: 2, offload_parameters: true}\n",
            "error: offload_parameters needs sharded parameters",
        ),
        (
            "  fine_tuning: {training: {optimizer: adafactor}}\n"
            "  distributed: {strategy: deepspeed_zero2, offload_optimizer: true}\n",
            "error: offload_optimizer runs DeepSpeed's CPU AdamW",
        ),
        (
            "  fine_tuning: {method: prefix_tuning}\n  deployment: {target: kubernetes}\n",
            "warning: vLLM cannot serve prefix_tuning adapters",
        ),
        (
            "  deployment: {target: kubernetes, auto_scaling: {min_replicas: 5, max_replicas: 2}}\n",
            "error: min_replicas 5 is more than max_replicas 2",
        ),
    ],
)
def test_cross_checks(write_config, text, expected):
    found = messages(write_config, text)
    assert any(expected in m for m in found), found


def test_nodes_without_a_rendezvous_go_to_a_pytorchjob(write_config):
    path = write_config(BASE + "  distributed: {strategy: deepspeed_zero3, gpus: 8, nodes: 2}\n")
    result = compile_config(path, "bundle")
    decisions = {d.path: d for d in result.plan.decisions}
    launcher = decisions["model_config.distributed.launcher"]
    assert launcher.value == "kubernetes" and "rendezvous" in launcher.reason
    assert "k8s/pytorchjob.yaml" in result.files and "k8s/job.yaml" not in result.files


def test_gradient_checkpointing_under_zero3_is_non_reentrant(write_config):
    path = write_config(
        BASE + "  fine_tuning: {training: {gradient_checkpointing: true}}\n"
        "  distributed: {strategy: deepspeed_zero3, gpus: 2}\n"
    )
    train = compile_config(path, "bundle").files["train.py"]
    assert 'gradient_checkpointing_kwargs={"use_reentrant": False}' in train
    assert "HfDeepSpeedConfig(" in train  # weights partitioned as they load
    assert 'deepspeed=str(BUNDLE_DIR / "ds_config.json")' in train


def test_training_arguments_and_ds_config_agree(write_config):
    path = write_config(
        BASE
        + "  fine_tuning: {training: {batch_size: 2, learning_rate: 2.0e-5, max_grad_norm: 0.5}}\n"
        "  distributed: {strategy: deepspeed_zero2, gpus: 4, global_batch_size: 32,"
        " offload_optimizer: true}\n"
    )
    files = compile_config(path, "bundle").files
    ds = json.loads(files["ds_config.json"])
    assert (ds["train_micro_batch_size_per_gpu"], ds["gradient_accumulation_steps"]) == (2, 4)
    assert ds["train_batch_size"] == 32 and ds["gradient_clipping"] == 0.5
    assert ds["optimizer"]["params"]["lr"] == 2e-5
    assert "per_device_train_batch_size=2," in files["train.py"]
    assert "gradient_accumulation_steps=4," in files["train.py"]


def test_lora_under_ddp_does_not_look_for_unused_parameters(write_config):
    path = write_config(BASE + "  distributed: {strategy: ddp, gpus: 2}\n")
    train = compile_config(path, "bundle").files["train.py"]
    assert "ddp_find_unused_parameters=False," in train
    assert '"--local_rank", "--local-rank"' in train


def test_single_gpu_bundles_emit_nothing_distributed(write_config):
    files = compile_config(write_config(BASE), "bundle").files
    assert not {"ds_config.json", "Dockerfile", "k8s/job.yaml"} & set(files)
    assert "local_rank" not in files["train.py"] and "launch." not in files["train.py"]


@pytest.mark.parametrize(
    ("deployment", "emitted", "absent"),
    [
        (
            "{target: docker}",
            {"Dockerfile", "Dockerfile.serve"},
            {"k8s/job.yaml", "k8s/deployment.yaml"},
        ),
        ("{target: local}", set(), {"Dockerfile", "Dockerfile.serve", "k8s/deployment.yaml"}),
        (
            "{target: kubernetes}",
            {"k8s/job.yaml", "k8s/deployment.yaml", "k8s/service.yaml"},
            {"k8s/hpa.yaml", "k8s/pytorchjob.yaml"},  # no auto_scaling block: no autoscaler
        ),
    ],
)
def test_only_what_the_config_asks_for_is_emitted(write_config, deployment, emitted, absent):
    files = compile_config(write_config(BASE + f"  deployment: {deployment}\n"), "bundle").files
    assert emitted <= set(files) and not absent & set(files), sorted(files)

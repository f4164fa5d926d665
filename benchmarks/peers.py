"""Peer arms for train_throughput.py: LLaMA-Factory and axolotl, each from its own venv.

Each peer gets the same model, data, sequence length, batch, steps, learning rate and LoRA
settings, in its own config format, in a ``default`` variant (its defaults: padding, and
gradient checkpointing off so it compares like for like) and a ``packing`` variant
(LLaMA-Factory ``neat_packing``, axolotl ``sample_packing``: both without cross-example
attention). Tokens and time are measured inside the peer's process by peer_probe/
sitecustomize.py, which wraps transformers' Trainer the same way for every peer.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROBE_DIR = Path(__file__).resolve().parent / "peer_probe"
SHIMS_DIR = Path(__file__).resolve().parent / "peer_shims"  # torchaudio, for LLaMA-Factory
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj"]


@dataclass(frozen=True)
class Settings:
    model: Path
    data: Path
    steps: int
    batch: int
    seq: int
    rank: int
    learning_rate: dict[str, float]
    bf16: bool
    logging_steps: int = 10


def runner(
    name: str,
    venv: Path,
    variant: str,
    s: Settings,
    run: Callable[..., Any],
    result: Callable[..., Any],
) -> Callable[[str, Path, dict[str, str]], dict[str, Any]]:
    def go(method: str, work: Path, env: dict[str, str]) -> dict[str, Any]:
        work.mkdir(parents=True)
        probe_out = work / "probe.json"
        child_env = {
            **env,
            "PATH": f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
            "PYTHONPATH": os.pathsep.join(
                [str(PROBE_DIR)] + ([str(SHIMS_DIR)] if name == "llamafactory" else [])
            ),
            "LFM_BENCH_PROBE_OUT": str(probe_out),
            "AXOLOTL_DO_NOT_TRACK": "1",
            "DISABLE_VERSION_CHECK": "1",
            "VIRTUAL_ENV": str(venv),
        }
        if name == "llamafactory":
            command = [
                str(venv / "bin" / "llamafactory-cli"),
                "train",
                str(_llamafactory(work, method, variant, s)),
            ]
        else:
            command = [
                str(venv / "bin" / "axolotl"),
                "train",
                str(_axolotl(work, method, variant, s)),
            ]
        seconds, rusage = run(command, child_env, work)
        probe = json.loads(probe_out.read_text(encoding="utf-8"))
        return result(
            probe["train_runtime"],
            probe["real_tokens"],
            probe["total_tokens"],
            probe["final_loss"],
            rusage,
            probe.get("gpu_peak_mb"),
            seconds,
        )

    return go


def _llamafactory(work: Path, method: str, variant: str, s: Settings) -> Path:
    data_dir = work / "data"
    data_dir.mkdir()
    (data_dir / "dataset_info.json").write_text(
        json.dumps({"bench": {"file_name": str(s.data)}}), encoding="utf-8"
    )
    config: dict[str, Any] = {
        "model_name_or_path": str(s.model),
        "stage": "sft",
        "do_train": True,
        "finetuning_type": method,
        "dataset": "bench",
        "dataset_dir": str(data_dir),
        "template": "alpaca",
        "cutoff_len": s.seq,
        "max_steps": s.steps,
        "per_device_train_batch_size": s.batch,
        "gradient_accumulation_steps": 1,
        "learning_rate": s.learning_rate[method],
        "lr_scheduler_type": "linear",
        "logging_steps": s.logging_steps,
        "save_strategy": "no",
        "output_dir": str(work / "out"),
        "overwrite_output_dir": True,
        "report_to": "none",
        "bf16": s.bf16,
        "disable_gradient_checkpointing": True,
        "preprocessing_num_workers": 1,
        "packing": variant == "packing",
        "neat_packing": variant == "packing",
    }
    if method == "lora":
        config |= {
            "lora_rank": s.rank,
            "lora_alpha": 2 * s.rank,
            "lora_dropout": 0.0,
            "lora_target": ",".join(TARGETS),
        }
    path = work / "llamafactory.yaml"  # JSON is YAML (its .json reader is broken in 0.9.5)
    path.write_text(json.dumps(config, indent=2), encoding="utf-8")
    return path


def _axolotl(work: Path, method: str, variant: str, s: Settings) -> Path:
    config: dict[str, Any] = {
        "base_model": str(s.model),
        "datasets": [{"path": str(s.data), "type": "alpaca", "ds_type": "json"}],
        "dataset_prepared_path": str(work / "prepared"),
        "val_set_size": 0,
        "dataset_processes": 1,  # no worker pool on a 2-core machine
        "output_dir": str(work / "out"),
        "sequence_len": s.seq,
        "sample_packing": variant == "packing",
        "pad_to_sequence_len": False,
        "micro_batch_size": s.batch,
        "gradient_accumulation_steps": 1,
        "max_steps": s.steps,
        "num_epochs": 1,
        "optimizer": "adamw_torch",
        "lr_scheduler": "linear",
        "learning_rate": s.learning_rate[method],
        "bf16": s.bf16,
        "fp16": False,
        "tf32": False,
        "logging_steps": s.logging_steps,
        "save_strategy": "no",
        "gradient_checkpointing": False,
        "flash_attention": False,
        "sdp_attention": True,
        "special_tokens": {"pad_token": "<pad>"},
    }
    if method == "lora":
        config |= {
            "adapter": "lora",
            "lora_r": s.rank,
            "lora_alpha": 2 * s.rank,
            "lora_dropout": 0.0,
            "lora_target_modules": TARGETS,
        }
    path = work / "axolotl.yaml"  # JSON is YAML
    path.write_text(json.dumps(config, indent=2), encoding="utf-8")
    return path

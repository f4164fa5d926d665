"""Merge a trained adapter into its base model: one standalone model, no PEFT needed to serve it.

Used by `lfm export --merge` and by train.py when `merge_on_save` is set. The base model is
loaded again unquantized, in `dtype`; with `verify`, the merged model's logits are compared with
base + adapter on a short prompt. A QLoRA adapter was trained against the 4-bit weights, so its
merge into the unquantized base is close to, not the same as, the model that was trained (the
check compares against the unquantized base and cannot see that difference).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import ownership, paths
from .errors import RuntimeConfigError
from .modeling import PROMPT_LEARNING

DTYPES = ("float32", "bfloat16", "float16")
VERIFY_PROMPT = "The quick brown fox jumps over the lazy dog."


@dataclass(frozen=True)
class MergeReport:
    output_dir: Path
    max_logit_difference: float | None  # None when not verified


def merge_adapter(
    adapter_dir: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    *,
    base_model: str | None = None,
    base_dir: str | os.PathLike[str] | None = None,
    dtype: str = "float32",
    overwrite: bool = False,
    verify: bool = True,
) -> MergeReport:
    """Write base + adapter, merged, as safetensors that `AutoModelForCausalLM` loads."""
    adapter_dir, output_dir = Path(adapter_dir), Path(output_dir)
    config = _adapter_config(adapter_dir)
    base = paths.resolve(base_model, base_dir) if base_model else config["base_model_name_or_path"]
    check_output(output_dir, overwrite, adapter_dir, base)
    if dtype not in DTYPES:
        raise RuntimeConfigError(f"export: dtype {dtype!r} is not one of {', '.join(DTYPES)}")

    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        model = AutoModelForCausalLM.from_pretrained(base, dtype=getattr(torch, dtype))
    except OSError as exc:
        raise RuntimeConfigError(
            f"export: cannot load the base model {base!r} ({str(exc).splitlines()[0]}); "
            "pass --base with its hub id or directory"
        ) from None
    tuned = PeftModel.from_pretrained(model, str(adapter_dir))
    tokenizer = AutoTokenizer.from_pretrained(
        str(adapter_dir) if _has_tokenizer(adapter_dir) else base
    )
    probe = tokenizer(VERIFY_PROMPT, return_tensors="pt") if verify else None
    before = _logits(tuned, probe)
    merged = tuned.merge_and_unload()
    after = _logits(merged, probe)
    difference = None if before is None else float((before - after).abs().max())

    staging = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.export-", dir=_parent(output_dir)))
    try:
        merged.save_pretrained(str(staging), safe_serialization=True)
        tokenizer.save_pretrained(str(staging))
        ownership.write_manifest(staging)  # what a later --force may replace
        if output_dir.exists():
            # Only reached with overwrite=True, when every file there is lfm's (checked above).
            shutil.rmtree(output_dir)
        os.rename(staging, output_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return MergeReport(output_dir, difference)


def _adapter_config(adapter_dir: Path) -> dict[str, Any]:
    path = adapter_dir / "adapter_config.json"
    if not path.is_file():
        raise RuntimeConfigError(
            f"export: {adapter_dir} holds no adapter (no adapter_config.json); point --model at "
            "the output directory of an adapter training run"
        )
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RuntimeConfigError(f"export: cannot read {path} ({exc})") from None
    if not isinstance(config, dict) or "base_model_name_or_path" not in config:
        raise RuntimeConfigError(f"export: {path} names no base model; pass --base")
    if config.get("peft_type") in PROMPT_LEARNING:
        raise RuntimeConfigError(
            f"export: a {config['peft_type'].lower()} adapter adds virtual tokens, not weight "
            "updates, so it cannot be merged into the base model; serve it with PEFT instead"
        )
    return config


def check_output(
    output_dir: Path, overwrite: bool, adapter_dir: Path, base: str | None = None
) -> None:
    """Where the merged model may go: never over the adapter or its local base, the current
    directory or a link; over an earlier export only with ``overwrite``, and only if lfm wrote
    all of it. train.py with merge_on_save asks before it trains, not after."""
    inputs = [Path(adapter_dir)]
    if base and Path(base).expanduser().is_dir():
        inputs.append(Path(base).expanduser())
    output_dir = Path(output_dir)
    problem = ownership.placement_problem(output_dir, inputs) or (
        ownership.replace_problem(output_dir, force=overwrite)
    )
    if problem:
        raise RuntimeConfigError(f"export: {problem}")


def _parent(output_dir: Path) -> Path:
    parent = output_dir.absolute().parent
    parent.mkdir(parents=True, exist_ok=True)
    return parent


def _has_tokenizer(folder: Path) -> bool:
    return (folder / "tokenizer_config.json").is_file()


def _logits(model: Any, inputs: Any) -> Any:
    if inputs is None:
        return None
    import torch

    with torch.no_grad():
        return model(**inputs).logits.float()

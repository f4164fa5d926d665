"""Resume only checkpoints of what this bundle trains.

``lfm compile`` over an existing bundle keeps its ``output/`` (a recompile must not throw a
run away), so after a config change the newest checkpoint there may belong to another
config: resuming it crashes on a size mismatch (a new LoRA rank) or, worse, quietly finishes
the old run (a new learning rate: the checkpoint's optimizer and scheduler win) and saves
the old model as the new one. Each run records what it trains in ``lfm-run.json`` beside its
checkpoints; a restarted run resumes only when that still matches the bundle's lock file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .errors import RuntimeConfigError
from .launch import announce, is_main_process
from .sources import DOCUMENT_SOURCES

RUN_FILE = "lfm-run.json"
LOCK_FILE = "lfm.lock.json"
# Training settings a resumed run may change: how long it trains, how often it saves, logs
# and evaluates, and the speed and memory knobs (none changes what a step computes).
MAY_CHANGE = frozenset(
    {
        "epochs",
        "max_steps",
        "save_steps",
        "save_total_limit",
        "logging_steps",
        "eval_steps",
        "output_dir",
        "dataloader_num_workers",
        "attention",
        "torch_compile",
        "liger_kernels",
        "gradient_checkpointing",
        "packing",
        "precision",
    }
)
_SHOWN_CHANGES = 3


def what_it_trains(model_config: dict[str, Any]) -> dict[str, Any]:
    """The settings a checkpoint depends on: the base model, the method, the data, the
    optimization. Names, monitoring, evaluation and deployment may change freely."""
    fine_tuning = dict(model_config.get("fine_tuning", {}))
    fine_tuning["training"] = {
        key: value
        for key, value in fine_tuning.get("training", {}).items()
        if key not in MAY_CHANGE
    }
    # Merging the adapter into the base happens after training, from the saved adapter.
    fine_tuning["parameters"] = {
        key: value
        for key, value in fine_tuning.get("parameters", {}).items()
        if key != "merge_on_save"
    }
    return {
        "base_model": model_config.get("base_model"),
        "fine_tuning": fine_tuning,
        "dataset": _data_settings(model_config.get("dataset") or {}),
    }


def _data_settings(dataset: dict[str, Any]) -> dict[str, Any]:
    """What makes the training examples: every setting for documents (they are chunked,
    turned into Q&A and filtered), the source and tokenization for ready-made records."""
    source = dataset.get("source", {})
    if source.get("type") in DOCUMENT_SOURCES:
        return dataset
    preprocessing = dataset.get("preprocessing", {})
    return {
        "source": source,
        "preprocessing": {
            key: preprocessing.get(key) for key in ("format", "max_length", "train_on_inputs")
        },
        "validation": {"split_ratio": dataset.get("validation", {}).get("split_ratio")},
    }


def check(output_dir: Path, bundle_dir: Path, checkpoint: str | None) -> None:
    """Raise when ``checkpoint`` was trained from other settings than this bundle's.

    A run starting from scratch records its settings. A bundle without a lock file (a
    hand-written script) is not checked; checkpoints without a record (an older lfm's) are
    taken as this config's, and recorded from then on.
    """
    lock = bundle_dir / LOCK_FILE
    if not lock.is_file():
        return
    current = what_it_trains(json.loads(lock.read_text(encoding="utf-8"))["model_config"])
    record = output_dir / RUN_FILE
    recorded = _recorded(record) if checkpoint is not None else None
    if recorded is not None:
        changes = differences(recorded, current)
        if changes:
            raise RuntimeConfigError(
                f"{output_dir} holds checkpoints of another config ({summary(changes)}), which this "
                "one cannot resume: move or delete that folder to train from scratch, or set "
                "fine_tuning.training.output_dir to train beside it"
            )
        return
    if is_main_process():
        from .metrics import write_json_atomic  # (transformers: not on lfm compile's path)

        output_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(record, {"lock": LOCK_FILE, "trains": current})


def _recorded(record: Path) -> dict[str, Any] | None:
    """What a run's record says it trains; None when there is none or it is unreadable (then
    the checkpoints are taken as this config's, and the record written again)."""
    if not record.is_file():
        return None
    try:
        trains = json.loads(record.read_text(encoding="utf-8")).get("trains")
    except (OSError, ValueError, AttributeError):
        trains = None
    if not isinstance(trains, dict):
        announce(f"{record} is unreadable: resuming without checking it")
        return None
    return trains


def stale_runs(output_dir: Path, model_config: dict[str, Any]) -> dict[Path, list[str]]:
    """Checkpointed runs under ``output_dir`` (hybrid adapters: one folder down) recorded with
    other settings than ``model_config``, each with what changed: ``lfm compile`` warns."""
    current = what_it_trains(model_config)
    found = {}
    for record in sorted([*output_dir.glob(RUN_FILE), *output_dir.glob(f"*/{RUN_FILE}")]):
        try:
            recorded = json.loads(record.read_text(encoding="utf-8")).get("trains")
        except (OSError, ValueError, AttributeError):
            continue
        if not isinstance(recorded, dict) or not any(record.parent.glob("checkpoint-*")):
            continue
        if changes := differences(recorded, current):
            found[record.parent] = changes
    return found


def summary(changes: list[str]) -> str:
    """The first few changes, and how many more: one readable line."""
    more = len(changes) - _SHOWN_CHANGES
    return "; ".join(changes[:_SHOWN_CHANGES]) + (f" and {more} more" if more > 0 else "")


def differences(old: Any, new: Any, path: str = "model_config") -> list[str]:
    """``path: old -> new`` for every setting that differs (dicts compared key by key)."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [
            change
            for key in sorted(old.keys() | new.keys())
            for change in differences(old.get(key), new.get(key), f"{path}.{key}")
        ]
    if old == new:
        return []
    return [f"{path}: {json.dumps(old)} -> {json.dumps(new)}"]

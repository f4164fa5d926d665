"""Lineage read from a training output, its bundle's lfm.lock.json and eval_results.json.

Everything here is best effort from files that exist; the command line overrides any of it
(`--base-model`, `--method`, `--dataset`, `--type`). Keys are flat so `list --filter` can match
them: type, base_model, method, method_params, dataset, dataset_sha256, config_sha256,
bundle_sha256, lfm_version, libraries, eval_gates, base_model_fingerprint.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lfm.runtime.fingerprint import fingerprint

from .errors import RegistryError
from .manifest import sha256_file

LOCK_FILE = "lfm.lock.json"
BUNDLE_MANIFEST = "MANIFEST.sha256"
EVAL_FILE = "eval_results.json"
EVAL_DIR = "eval"  # where `lfm evaluate` and evaluate.py put it, in the model's folder
TRAIN_METRICS_FILE = "metrics.json"
BASE_FINGERPRINT = "base_model_fingerprint"
TYPES = ("adapter", "merged", "full", "embedding")
# What a user may type for --type and list --type; the seed says `--type adapters`.
TYPE_ALIASES = {
    "adapter": "adapter",
    "adapters": "adapter",
    "merged": "merged",
    "merged-model": "merged",
    "full": "full",
    "full-model": "full",
    "model": "full",
    "models": "full",
    # A sentence-transformers model (task: embedding): a whole model folder, served on
    # /v1/embeddings rather than chat completions.
    "embedding": "embedding",
    "embeddings": "embedding",
    "embedding-model": "embedding",
}


def normalize_type(text: str) -> str:
    try:
        return TYPE_ALIASES[text.lower()]
    except KeyError:
        raise RegistryError(
            f"bad type {text!r}: use adapter, merged, full or embedding (plural forms work too)"
        ) from None


def find_bundle(model_dir: Path) -> Path | None:
    """The bundle a training output came from: the nearest folder up with an lfm.lock.json."""
    for folder in (model_dir, *list(model_dir.resolve().parents)[:2]):
        if (folder / LOCK_FILE).is_file():
            return folder
    return None


def read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RegistryError(f"{what} {path} does not exist") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise RegistryError(f"{what} {path} is not readable JSON ({exc})") from None


def read_lineage(model_dir: Path, bundle_dir: Path | None) -> dict[str, Any]:
    lineage: dict[str, Any] = {"type": _detect_type(model_dir, None)}
    adapter = _optional_json(model_dir / "adapter_config.json")
    if adapter:
        lineage["base_model"] = adapter.get("base_model_name_or_path")
        lineage["peft_type"] = adapter.get("peft_type")
    if bundle_dir is not None:
        lineage.update(_from_lock(bundle_dir, lineage))
    ran = (_optional_json(model_dir / TRAIN_METRICS_FILE) or {}).get("versions")
    if isinstance(ran, dict) and ran:
        # What the run's process had installed, not what the bundle pinned.
        lineage["libraries"] = {str(k): str(v) for k, v in ran.items()}
        lineage["libraries_from"] = "run"
    elif lineage.get("libraries"):
        lineage["libraries_from"] = "lock"  # a run from before lfm recorded its versions
    lineage["type"] = _detect_type(model_dir, lineage.get("method"))
    if lineage["type"] == "adapter":  # what a server compares its base model with
        lineage[BASE_FINGERPRINT] = _base_fingerprint(lineage, bundle_dir)
    return {k: v for k, v in lineage.items() if v not in (None, "", {}, [])}


def _base_fingerprint(lineage: dict[str, Any], bundle_dir: Path | None) -> str | None:
    """The fingerprint of the adapter's base model, when that is a folder here (as at training
    time, usually): by its recorded path, else the config's base_model beside the bundle's
    config. A hub id has none; a server then compares names."""
    candidates = [lineage.get("base_model")]
    config = lineage.get("config_base_model")
    if bundle_dir is not None and isinstance(config, str):
        source = (_optional_json(bundle_dir / LOCK_FILE) or {}).get("source") or {}
        where = source.get("config") if isinstance(source, dict) else None
        if isinstance(where, str):
            candidates.append(str(bundle_dir / Path(where).parent / config))
    for candidate in candidates:
        if isinstance(candidate, str) and candidate and Path(candidate).is_dir():
            return base_fingerprint(Path(candidate))
    return None


def base_fingerprint(folder: Path) -> str | None:
    """What identifies a base model folder (lfm.runtime.fingerprint): two copies of one model
    agree; another model of the same shape does not. None without a readable config.json."""
    return fingerprint(folder)


def _detect_type(model_dir: Path, method: str | None) -> str:
    if (model_dir / "adapter_config.json").is_file():
        return "adapter"
    if (model_dir / "modules.json").is_file():  # sentence-transformers' layout (task: embedding)
        return "embedding"
    if method and method != "full":  # weights of an adapter method without an adapter: merged
        return "merged"
    if model_dir.name == "merged":
        return "merged"
    return "full"


def _from_lock(bundle_dir: Path, lineage: dict[str, Any]) -> dict[str, Any]:
    lock = read_json(bundle_dir / LOCK_FILE, "lock file")
    config = lock.get("model_config") or {}
    tuning = config.get("fine_tuning") or {}
    source = (config.get("dataset") or {}).get("source") or {}
    found: dict[str, Any] = {
        "base_model": lineage.get("base_model") or config.get("base_model"),
        "config_base_model": config.get("base_model"),
        "method": tuning.get("method"),
        "task": config.get("task"),
        "method_params": tuning.get("parameters") or {},
        "training_params": tuning.get("training") or {},
        "dataset": _dataset_name(source),
        "dataset_source": source.get("type"),
        "dataset_sha256": _dataset_hash(bundle_dir, lock, source),
        "config_sha256": (lock.get("source") or {}).get("sha256"),
        "config_name": config.get("name"),
        "config_version": config.get("version"),
        "lfm_version": lock.get("lfm_version"),
        "libraries": _libraries(lock.get("requirements") or []),
        "bundle": str(bundle_dir.resolve()),
    }
    if (bundle_dir / BUNDLE_MANIFEST).is_file():
        # The bundle's manifest lists every file's hash; hashing it hashes the whole bundle.
        found["bundle_sha256"] = sha256_file(bundle_dir / BUNDLE_MANIFEST)
    return found


def _dataset_name(source: dict[str, Any]) -> str | None:
    for key in ("name", "dataset", "path"):
        value = source.get(key)
        if isinstance(value, str) and value:
            if key == "path":
                stem = Path(value).name
                return stem.rsplit(".", 1)[0] if "." in stem else stem
            return value
    return None


def _dataset_hash(bundle_dir: Path, lock: dict[str, Any], source: dict[str, Any]) -> str | None:
    """A hash the lock recorded, else the hash of the local dataset file as it is now."""
    for holder in (lock.get("dataset") or {}, source):
        if isinstance(holder, dict) and isinstance(holder.get("sha256"), str):
            return str(holder["sha256"])
    path = source.get("path")
    config = (lock.get("source") or {}).get("config")
    if source.get("type") not in (None, "local") or not isinstance(path, str) or not config:
        return None
    # Dataset paths are relative to the config, and the config path is relative to the bundle.
    data = (bundle_dir / Path(config).parent / path).resolve()
    if data.is_file():
        return sha256_file(data)
    return None


def _libraries(requirements: list[str]) -> dict[str, str]:
    pins = (r.split("==", 1) for r in requirements if isinstance(r, str) and "==" in r)
    return {name.strip(): version.strip() for name, version in pins}


def _optional_json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    value = read_json(path, "file")
    return value if isinstance(value, dict) else None


def find_eval_results(model_dir: Path, bundle_dir: Path | None) -> Path | None:
    """Beside the model, in its eval/ folder (where `lfm evaluate` and a bundle's evaluate.py
    write them), or in the bundle."""
    for folder in (model_dir, model_dir / EVAL_DIR, bundle_dir):
        if folder is not None and (folder / EVAL_FILE).is_file():
            return folder / EVAL_FILE
    return None


def training_metrics(model_dir: Path) -> dict[str, float]:
    """Headline numbers from the run's metrics.json (written by lfm's training callback)."""
    data = _optional_json(model_dir / TRAIN_METRICS_FILE) or {}
    keys = ("final_loss", "train_runtime", "tokens_per_second", "global_step")
    return {
        f"train.{key}": float(data[key])
        for key in keys
        if isinstance(data.get(key), int | float) and not isinstance(data.get(key), bool)
    }

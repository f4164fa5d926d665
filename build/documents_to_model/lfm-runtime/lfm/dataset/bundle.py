"""Build a bundle's training data from its documents: once, then reused by content hash.

``train.py`` hands :func:`build_documents` to the runtime (``DatasetSpec(build_documents=...)``),
which calls it with the settings the compiler wrote into the script. The dataset goes to ``<bundle>/.lfm-dataset/<key>/``, where the key hashes the lfm
version, the settings and every document's bytes: a rerun with the same inputs reads the cached
records; a changed document or setting builds a new dataset. A file lock keeps several training
processes (``accelerate launch``) from building it at the same time.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import shutil
from pathlib import Path
from typing import Any

from lfm.runtime import __version__
from lfm.runtime.dataset_gates import failures
from lfm.runtime.errors import RuntimeConfigError

from .create import create
from .discover import discover
from .errors import DatasetError
from .options import CreateOptions, options_from_config, with_cache
from .report import REPORT_VERSION

logger = logging.getLogger(__name__)


def build_documents(
    documents: dict[str, Any],
    *,
    source: Path,
    fmt: str,
    split_ratio: float,
    seed: int,
    tokenizer: str | None,
    cache_root: Path,
) -> tuple[Path, Path | None]:
    """:func:`build_for_training` as the runtime calls it (a ``lfm.runtime.sources.DocumentBuilder``):
    a problem with the documents is a RuntimeConfigError naming the config field."""
    try:
        return build_for_training(
            documents,
            source=source,
            fmt=fmt,
            split_ratio=split_ratio,
            seed=seed,
            tokenizer=tokenizer,
            cache_root=cache_root,
        )
    except DatasetError as exc:
        raise RuntimeConfigError(f"dataset.source.path: {exc}") from None


def build_for_training(
    documents: dict[str, Any],
    *,
    source: Path,
    fmt: str,
    split_ratio: float,
    seed: int,
    tokenizer: str | None,
    cache_root: Path,
) -> tuple[Path, Path | None]:
    """(train file, test file or None when no document could be held out)."""
    section = {
        "source": {
            "include_metadata": documents.get("include_metadata", False),
            "keep_passages": documents.get("keep_passages", False),
        },
        "preprocessing": {
            "format": fmt,
            "chunk_size": documents.get("chunk_size", 384),
            "chunk_overlap": documents.get("chunk_overlap", 48),
            "qa_generation": documents.get("qa_generation", {}),
        },
        "quality_control": documents.get("quality_control", {}),
        "validation": {
            "split_ratio": split_ratio,
            "quality_threshold": documents.get("quality_threshold", 0.0),
        },
        "augmentation": documents.get("augmentation", False),
    }
    options = options_from_config(section, sources=[str(source)], seed=seed, tokenizer=tokenizer)
    cache_root.mkdir(parents=True, exist_ok=True)
    with (cache_root / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # other ranks wait here, then find the cache
        target = cache_root / cache_key(options)[:20]
        if not (target / "train.jsonl").exists():
            logger.warning("Building the dataset from %s into %s", source, target)
            report = create(with_cache(options, cache_root / "generations"), target)
            for barren in report["documents"]["without_records"]:
                logger.warning("No records from %s: %s", barren["file"], barren["why"])
            _remove_stale(cache_root, keep=target.name)
        else:
            logger.info("Using the dataset built earlier: %s", target)
    _stop_on_failed_gates(target / "dataset_report.json")
    test = target / "test.jsonl"
    return target / "train.jsonl", test if test.exists() else None


def _stop_on_failed_gates(report_path: Path) -> None:
    """quality_control gates stop training before it costs GPU time (also on a cached build,
    whose report keeps the outcome)."""
    report = json.loads(report_path.read_text(encoding="utf-8"))
    failed = failures(report.get("gates", {}))
    if failed:
        raise DatasetError(
            f"the dataset built in {report_path.parent} failed its gates: {'; '.join(failed)}"
        )


def cache_key(options: CreateOptions) -> str:
    digest = hashlib.sha256()
    settings = {"lfm": __version__, "report": REPORT_VERSION, "options": options.fingerprint()}
    digest.update(json.dumps(settings, sort_keys=True, default=str).encode())
    for file in discover(options.sources):
        digest.update(file.name.encode() + b"\0")
        if file.skipped is not None:  # never opened: why it is skipped is what counts
            digest.update(file.skipped.encode())
            continue
        with file.path.open("rb") as handle:
            digest.update(hashlib.file_digest(handle, "sha256").digest())
    return digest.hexdigest()


def _remove_stale(cache_root: Path, keep: str) -> None:
    for entry in cache_root.iterdir():
        if entry.is_dir() and entry.name not in (keep, "generations"):
            shutil.rmtree(entry, ignore_errors=True)

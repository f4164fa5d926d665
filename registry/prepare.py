"""Turn `register`'s inputs (a training output and flags) into a RegisterRequest."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .errors import RegistryError
from .evaluation import read_eval_results
from .lineage import (
    find_bundle,
    find_eval_results,
    normalize_type,
    read_json,
    read_lineage,
    training_metrics,
)
from .manifest import FileEntry, artifact_files, sha256_file
from .records import RegisterRequest
from .references import check_name, check_version

_TAG = re.compile(r"([A-Za-z0-9_.\-]+)=([^\x00-\x1f\x7f]*)")


def parse_tags(texts: Iterable[str]) -> dict[str, str]:
    tags = {}
    for text in texts:
        match = _TAG.fullmatch(text)
        if not match:
            raise RegistryError(
                f"bad tag {text!r}: write KEY=VALUE (no control characters), e.g. domain=medical"
            )
        tags[match.group(1)] = match.group(2)
    return tags


def prepare(
    model_dir: str | os.PathLike[str],
    *,
    name: str | None = None,
    version: str | None = None,
    base_model: str | None = None,
    method: str | None = None,
    dataset: str | None = None,
    model_type: str | None = None,
    metrics_file: str | os.PathLike[str] | None = None,
    bundle_dir: str | os.PathLike[str] | None = None,
    tags: dict[str, str] | None = None,
) -> RegisterRequest:
    source = Path(model_dir)
    paths = artifact_files(source)
    bundle = Path(bundle_dir) if bundle_dir else find_bundle(source)
    if bundle_dir and not (Path(bundle_dir) / "lfm.lock.json").is_file():
        raise RegistryError(f"--bundle {bundle_dir} holds no lfm.lock.json")
    lineage = read_lineage(source, bundle)
    lock: dict[str, Any] = read_json(bundle / "lfm.lock.json", "lock file") if bundle else {}
    name = name or lock.get("name")
    version = version or lock.get("version")
    if not name:
        raise RegistryError(
            "missing --name (there is no lfm.lock.json next to --model to take it from)"
        )
    if not version:
        raise RegistryError(
            "missing --version (there is no lfm.lock.json next to --model to take it from)"
        )
    name, version = check_name(name), check_version(version)
    overrides = {"base_model": base_model, "method": method, "dataset": dataset}
    lineage.update({k: v for k, v in overrides.items() if v})
    if model_type:
        lineage["type"] = normalize_type(model_type)
    metrics = training_metrics(source)
    gates = None
    found = Path(metrics_file) if metrics_file else find_eval_results(source, bundle)
    if found is not None:
        eval_metrics, gates = read_eval_results(found)
        metrics.update(eval_metrics)
        lineage["eval_results_sha256"] = sha256_file(found)
    files = tuple(
        FileEntry(
            p.relative_to(source).as_posix(),
            sha256_file(p),
            p.stat().st_size,
            os.access(p, os.X_OK),
        )
        for p in paths
    )
    return RegisterRequest(
        name=name,
        version=version,
        source_dir=source,
        files=files,
        type=lineage["type"],
        lineage=lineage,
        metrics=metrics,
        tags=dict(tags or {}),
        gates=gates,
    )

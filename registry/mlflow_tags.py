"""How a version's metadata is written to, and read back from, MLflow model-version tags.

``lfm.version``/``lfm.type``/``lfm.manifest_sha256``/... are ours; ``lfm.lineage.KEY`` holds a
lineage entry (JSON unless a plain string), ``lfm.metric.KEY`` a metric, ``lfm.gates`` the
evaluation gates; user tags (``domain=medical``) are plain tags, visible as such in MLflow's UI.
"""

from __future__ import annotations

import json
from typing import Any

from .manifest import FileEntry
from .records import RegisterRequest, VersionRecord

TAG_LIMIT = 5000  # MLflow's limit on a tag value
_LINEAGE, _METRIC = "lfm.lineage.", "lfm.metric."


def version_tags(request: RegisterRequest, manifest: str, at: str, user: str) -> dict[str, str]:
    tags = {
        "lfm.version": request.version,
        "lfm.type": request.type,
        "lfm.manifest_sha256": manifest,
        "lfm.size": str(sum(f.size for f in request.files)),
        "lfm.created_at": at,
        "lfm.created_by": user,
        **{f"{_LINEAGE}{k}": _encode(v) for k, v in request.lineage.items()},
        **{f"{_METRIC}{k}": repr(v) for k, v in request.metrics.items()},
        **request.tags,
    }
    if request.gates is not None:
        tags["lfm.gates"] = json.dumps(request.gates, sort_keys=True)
    return {k: v[:TAG_LIMIT] for k, v in tags.items()}


def record_from(mv: Any, files: tuple[FileEntry, ...], aliases: dict[str, str]) -> VersionRecord:
    """A VersionRecord from an MLflow ModelVersion; ``aliases`` maps environment -> number."""
    tags = dict(mv.tags or {})
    return VersionRecord(
        name=mv.name,
        version=tags["lfm.version"],
        type=tags.get("lfm.type", "full"),
        manifest_sha256=tags.get("lfm.manifest_sha256", ""),
        size=int(tags.get("lfm.size", "0")),
        created_at=tags.get("lfm.created_at", ""),
        created_by=tags.get("lfm.created_by", ""),
        lineage={k[len(_LINEAGE) :]: _decode(v) for k, v in tags.items() if k.startswith(_LINEAGE)},
        metrics={k[len(_METRIC) :]: float(v) for k, v in tags.items() if k.startswith(_METRIC)},
        tags={k: v for k, v in tags.items() if not k.startswith("lfm.")},
        gates=json.loads(tags["lfm.gates"]) if "lfm.gates" in tags else None,
        files=files,
        environments=tuple(sorted(e for e, n in aliases.items() if n == str(mv.version))),
    )


def metric_key(key: str) -> str:
    # MLflow metric names allow letters, digits, _ - . space / only.
    return "".join(c if c.isalnum() or c in "_-. /" else "_" for c in key)


def _encode(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _decode(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text

"""`lfm show`: one version's lineage, metrics, files and history, as plain text."""

from __future__ import annotations

import json
from typing import Any

from .records import Move, VersionRecord

_LINEAGE_ORDER = (
    "type",
    "base_model",
    "method",
    "method_params",
    "dataset",
    "dataset_sha256",
    "config_sha256",
    "bundle_sha256",
    "lfm_version",
    "libraries",
)


def render_record(record: VersionRecord, moves: list[Move]) -> str:
    lines = [
        f"{record.name}:{record.version}",
        f"  registered  {record.created_at} by {record.created_by}",
        f"  content     sha256 {record.manifest_sha256} ({len(record.files)} files, {record.size} bytes)",
        f"  environments {', '.join(record.environments) or '-'}",
        "lineage:",
    ]
    keys = [k for k in _LINEAGE_ORDER if k in record.lineage]
    keys += sorted(k for k in record.lineage if k not in _LINEAGE_ORDER)
    lines += [f"  {k}: {_text(record.lineage[k])}" for k in keys]
    if record.tags:
        lines.append("tags:")
        lines += [f"  {k}={v}" for k, v in sorted(record.tags.items())]
    if record.metrics:
        lines.append("metrics:")
        lines += [f"  {k}: {v:g}" for k, v in sorted(record.metrics.items())]
    if record.gates is not None:
        lines.append("gates:")
        lines += [f"  {k}: {'passed' if v else 'FAILED'}" for k, v in sorted(record.gates.items())]
    if record.files:
        lines.append("files:")
        lines += [f"  {f.sha256[:12]}  {f.size:>10}  {f.path}" for f in record.files]
    if moves:
        lines.append("history:")
        lines += [
            f"  {m.at}  {m.env}: {m.from_version or '-'} -> {m.to_version}  ({m.action} by {m.who})"
            for m in moves
        ]
    return "\n".join(lines)


def _text(value: Any) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return str(value)

"""`lfm show`: one version's lineage, metrics, files and history, as plain text."""

from __future__ import annotations

import json
import unicodedata
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
        f"  registered  {record.created_at} by {printable(record.created_by)}",
        f"  content     sha256 {record.manifest_sha256} ({len(record.files)} files, {record.size} bytes)",
        f"  environments {', '.join(record.environments) or '-'}",
        "lineage:",
    ]
    keys = [k for k in _LINEAGE_ORDER if k in record.lineage]
    keys += sorted(k for k in record.lineage if k not in _LINEAGE_ORDER)
    lines += [f"  {k}: {printable(_text(record.lineage[k]))}" for k in keys]
    if record.tags:
        lines.append("tags:")
        lines += [f"  {printable(k)}={printable(v)}" for k, v in sorted(record.tags.items())]
    if record.metrics:
        lines.append("metrics:")
        lines += [f"  {k}: {v:g}" for k, v in sorted(record.metrics.items())]
    if record.gates is not None:
        lines.append("gates:")
        lines += [f"  {k}: {'passed' if v else 'FAILED'}" for k, v in sorted(record.gates.items())]
    if record.files:
        lines.append("files:")
        lines += [f"  {f.sha256[:12]}  {f.size:>10}  {printable(f.path)}" for f in record.files]
    if moves:
        lines.append("history:")
        lines += [
            f"  {m.at}  {m.env}: {m.from_version or '-'} -> {m.to_version}  ({m.action} by {printable(m.who)})"
            for m in moves
        ]
    return "\n".join(lines)


def printable(text: str) -> str:
    """``text`` with control and format characters shown escaped (``\\x1b``, ``\\u202e``): what a
    registry holds came from someone else, and must not move the cursor, recolour the terminal
    or reorder what is shown."""
    return "".join(
        char if unicodedata.category(char) not in ("Cc", "Cf") else _escaped(char) for char in text
    )


def _escaped(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _text(value: Any) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return str(value)

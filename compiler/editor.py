"""Editor setup: the YAML language server (VS Code's YAML extension) reads our schema.

`lfm schema --vscode` writes the schema beside the workspace settings and merges one mapping
into `.vscode/settings.json`, keeping every other setting the user has.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

SCHEMA_FILE = ".vscode/lfm.schema.json"
PATTERNS = ["*.lfm.yaml", "*.lfm.yml", "lfm.yaml"]


def configure_vscode(workspace: Path, schema_text: str) -> str:
    folder = workspace / ".vscode"
    settings_file = folder / "settings.json"
    settings: dict = {}
    if settings_file.exists():
        try:
            settings = json.loads(settings_file.read_text(encoding="utf-8"))
        except ValueError:
            mapping = json.dumps({"yaml.schemas": {f"./{SCHEMA_FILE}": PATTERNS}})
            raise ValueError(
                f"{settings_file} is not plain JSON (comments?); add this setting yourself: {mapping}"
            ) from None
        if not isinstance(settings, dict):
            raise ValueError(f"{settings_file} does not hold a JSON object; fix it first")
    schemas = settings.setdefault("yaml.schemas", {})
    if not isinstance(schemas, dict):
        raise ValueError(f'"yaml.schemas" in {settings_file} is not an object; fix it first')
    schemas[f"./{SCHEMA_FILE}"] = PATTERNS
    folder.mkdir(exist_ok=True)
    _write_atomically(workspace / SCHEMA_FILE, schema_text)
    _write_atomically(settings_file, json.dumps(settings, indent=2, ensure_ascii=False) + "\n")
    return f"wrote {SCHEMA_FILE} and mapped {', '.join(PATTERNS)} to it in {settings_file}"


def _write_atomically(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)

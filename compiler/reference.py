"""docs/config-reference.md, generated from the schema: every field, its type, default and meaning.

python -m lfm.compiler.reference            # rewrite docs/config-reference.md
python -m lfm.compiler.reference --check    # exit 1 when it is stale (the tests run this)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .schema import load_schema

REFERENCE = Path("docs") / "config-reference.md"


def render_reference() -> str:
    schema = load_schema()
    lines = [
        "# model_config reference",
        "",
        "Generated from `schemas/model_config.schema.json` by `python -m lfm.compiler.reference`;",
        "do not edit by hand. `lfm schema` prints the schema itself.",
        "",
    ]
    _section(schema["$defs"]["model_config"], "model_config", lines)
    return "\n".join(lines).rstrip() + "\n"


def _section(
    node: dict[str, Any], path: str, lines: list[str], seen: set[str] | None = None
) -> None:
    seen = set() if seen is None else seen
    lines += [f"## `{path}`", "", _cell(node.get("description", "")), ""]
    required = set(node.get("required", []))
    lines += ["| field | type | default | description |", "| --- | --- | --- | --- |"]
    nested = []
    for name, prop in node.get("properties", {}).items():
        ref = prop.get("$ref")
        if ref:  # a block declared in $defs (sweep): documented once, like a nested one
            prop = {**_definition(ref), "description": prop.get("description", "")}
        if prop.get("type") == "object" and "properties" in prop and ref not in seen:
            if ref:
                seen.add(ref)
            nested.append((name, prop))
            kind = "mapping"
        else:
            kind = _type(prop)
        default = (
            "required" if name in required else _value(prop["default"]) if "default" in prop else ""
        )
        lines.append(f"| `{name}` | {kind} | {default} | {_cell(_describe(prop))} |")
    lines.append("")
    for name, prop in nested:
        _section(prop, f"{path}.{name}", lines, seen)


def _definition(ref: str) -> dict[str, Any]:
    """``#/$defs/NAME`` -> that definition."""
    return dict(load_schema()["$defs"][ref.removeprefix("#/$defs/")])


def _type(prop: dict[str, Any]) -> str:
    if "oneOf" in prop:
        return " or ".join(_type(p) for p in prop["oneOf"])
    kind = prop.get("type", "any")
    if kind == "array":
        return f"list of {_type(prop.get('items', {}))}"
    return str(kind)


def _describe(prop: dict[str, Any]) -> str:
    text = prop.get("description", "")
    if "enum" in prop:
        text += " One of: " + ", ".join(f"`{v}`" for v in prop["enum"]) + "."
    if "examples" in prop:
        text += " Example: " + ", ".join(f"`{json.dumps(e)}`" for e in prop["examples"][:2]) + "."
    return text


def _value(value: Any) -> str:
    return f"`{json.dumps(value)}`"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    args = parser.parse_args(argv)
    text = render_reference()
    if args.check:
        current = REFERENCE.read_text(encoding="utf-8") if REFERENCE.exists() else ""
        if current != text:
            print(f"{REFERENCE} is stale: run `python -m lfm.compiler.reference`", file=sys.stderr)
            return 1
        return 0
    REFERENCE.parent.mkdir(exist_ok=True)
    REFERENCE.write_text(text, encoding="utf-8")
    print(f"wrote {REFERENCE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

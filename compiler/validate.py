"""Pass 3, validate: every schema error at once, each at its file:line:col with a hint.

jsonschema finds the errors; this module only words them for people: unknown keys get a
"did you mean", enum misses name the closest value, type errors say what was expected.
Cross-field rules that JSON Schema cannot express are resolver rules (`rules/`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError

from .diagnostics import Diagnostic, did_you_mean, sort_key
from .load import SourceMap
from .schema import load_schema

_TYPE_NAMES = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "null": "null",
}


def _ecma_pattern(
    validator: Any, pattern: str, instance: Any, schema: dict[str, Any]
) -> Iterator[ValidationError]:
    """JSON Schema patterns are ECMA-262 regexes, where ``$`` ends the string; in Python's ``re``
    it also matches before a final newline, so ``"name\\n"`` would pass ``^[a-z]+$``. Checked
    here as editors (the YAML language server) check it."""
    whole = (
        pattern[:-1] + r"\Z" if pattern.endswith("$") and not pattern.endswith("\\$") else pattern
    )
    if validator.is_type(instance, "string") and not re.search(whole, instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


_Validator = validators.extend(Draft202012Validator, {"pattern": _ecma_pattern})


def validate(data: dict[str, Any], source: SourceMap) -> list[Diagnostic]:
    validator = _Validator(load_schema())
    out: list[Diagnostic] = []
    for error in validator.iter_errors(data):
        out.extend(_explain(error, source))
    return sorted(set(out), key=sort_key)


def _explain(error: ValidationError, source: SourceMap) -> list[Diagnostic]:
    path = tuple(error.absolute_path)
    kind = error.validator
    if kind == "additionalProperties":
        return _unknown_keys(error, path, source)
    if kind == "required":
        missing = str(error.message).split("'")[1]
        return [_at(source, path, f"missing required key '{missing}'", key=True)]
    if kind == "enum":
        choices = [str(c) for c in error.validator_value]
        hint = _enum_hint(error.instance, choices)
        message = f"{_show(error.instance)} is not one of: {', '.join(choices)}"
        return [_at(source, path, message, hint=hint)]
    if kind == "type":
        expected = error.validator_value
        names = [expected] if isinstance(expected, str) else list(expected)
        wanted = " or ".join(_TYPE_NAMES.get(n, n) for n in names)
        return [_at(source, path, f"expected {wanted}, got {_describe(error.instance)}")]
    if kind == "oneOf" and path and path[-1] == "target_modules":
        if isinstance(error.instance, list):  # a list with a problem: say which one
            return [
                d
                for sub in error.context or []
                if sub.schema_path[0] == 0
                for d in _explain(sub, source)
            ]
        return [_at(source, path, "expected a list of module names or 'all-linear'")]
    if kind == "anyOf" and (allowed := _alternatives(error.validator_value)):
        return [_at(source, path, f"must be {allowed}, got {_show(error.instance)}")]
    if kind == "minProperties" and not path:
        return [_at(source, path, "the config is empty: expected a `model_config` mapping")]
    if kind in _BOUNDS:
        return [
            _at(
                source,
                path,
                f"must be {_BOUNDS[kind]} {error.validator_value}, got {_show(error.instance)}",
            )
        ]
    if kind == "pattern":
        return [_at(source, path, f"{_show(error.instance)} {_pattern_hint(path)}")]
    if kind in ("minLength", "minItems", "minProperties"):
        return [_at(source, path, "must not be empty")]
    if kind == "uniqueItems":
        items = error.instance
        first = next(i for i, v in enumerate(items) if v in items[:i])
        return [_at(source, (*path, first), f"duplicate entry {_show(items[first])}")]
    return [_at(source, path, error.message)]


# Common spellings from other tools that string similarity does not catch.
_ALIASES = {
    "float16": "fp16",
    "half": "fp16",
    "bfloat16": "bf16",
    "float32": "fp32",
    "fp8": "bf16",
    "huggingface": "hub",
    "hf": "hub",
    "jsonl": "local",
    "json": "local",
    "file": "local",
    "zero1": "deepspeed_zero1",
    "zero2": "deepspeed_zero2",
    "zero3": "deepspeed_zero3",
    "deepspeed": "deepspeed_zero2",
    "data_parallel": "ddp",
    "single": "none",
    "full_finetune": "full",
    "full_fine_tuning": "full",
    "peft": "lora",
}


def _enum_hint(value: Any, choices: list[str]) -> str | None:
    if not isinstance(value, str):
        return None
    alias = _ALIASES.get(value.lower())
    return f"did you mean '{alias}'?" if alias in choices else did_you_mean(value, choices)


_BOUNDS = {
    "minimum": ">=",
    "maximum": "<=",
    "exclusiveMinimum": ">",
    "exclusiveMaximum": "<",
    "maxLength": "at most this long:",
    "maxItems": "at most this many items:",
}


def _alternatives(branches: list[dict[str, Any]]) -> str | None:
    """`-1 (train for `epochs`) or >= 1` for a number allowed as a special value or a range."""
    words = []
    for branch in branches:
        if "const" in branch:
            word = _show(branch["const"])
        elif len(bounds := [k for k in branch if k in _BOUNDS]) == 1:
            word = f"{_BOUNDS[bounds[0]]} {branch[bounds[0]]}"
        else:
            return None  # a shape this wording does not cover: jsonschema's message
        words.append(f"{word} ({branch['description']})" if "description" in branch else word)
    return " or ".join(words)


def _pattern_hint(path: tuple[Any, ...]) -> str:
    field = path[-1] if path else ""
    return {
        "version": "is not a semantic version (expected MAJOR.MINOR.PATCH, e.g. 1.0.0)",
        "name": "is not a valid name (letters, digits, '.', '_' and '-'; starts with a letter or digit)",
        "gpu": "is not a GPU spec (expected e.g. 1x_a100, a10g or none)",
        "memory": "is not a memory quantity (expected e.g. 32Gi)",
        "cpu": "is not a CPU quantity (expected e.g. 4 or 500m)",
        "webhook_url": "is not an http(s) URL",
        "api_key_env": "is not an API key variable: lfm sends only variables named *_API_KEY "
        "(upper case), so a config cannot post another secret of the environment",
    }.get(str(field), "does not have the expected form")


def _unknown_keys(
    error: ValidationError, path: tuple[Any, ...], source: SourceMap
) -> list[Diagnostic]:
    allowed = list(error.schema.get("properties", {}))
    instance = error.instance if isinstance(error.instance, dict) else {}
    out = []
    for key in instance:
        if key in allowed:
            continue
        where = "at the top level" if not path else f"in {'.'.join(map(str, path))}"
        out.append(
            _at(
                source,
                (*path, key),
                f"unknown key '{key}' {where}",
                key=True,
                hint=did_you_mean(key, allowed) or f"allowed keys: {', '.join(allowed)}",
            )
        )
    return out


def _at(
    source: SourceMap,
    path: tuple[Any, ...],
    message: str,
    *,
    key: bool = False,
    hint: str | None = None,
) -> Diagnostic:
    return Diagnostic("error", message, path, source.locate(path, key=key), hint)


def _show(value: Any) -> str:
    return (
        repr(value)
        if isinstance(value, str)
        else str(value).lower()
        if isinstance(value, bool)
        else str(value)
    )


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, str):
        return f"string {value!r}"
    if isinstance(value, (int, float)):
        return f"number {value}"
    if value is None:
        return "null"
    return "a list" if isinstance(value, list) else "a mapping"

"""`sweep.parameters`: each swept name resolved to a real config parameter, each range checked.

A parameter is sweepable when train.py can set it per trial on an object it builds anyway:
TrainingArguments (the training fields below), the method's PEFT config (a numeric field of
`fine_tuning.parameters` the chosen method writes into it) or, for a preference objective,
TRL's config (a numeric setting of `fine_tuning.preference` the objective reads: beta, ...). Anything else (the dataset, the
model, the method itself) changes the script's structure, so it is not searched here: sweep
separate configs instead.
"""

from __future__ import annotations

import math
from typing import Any

from ..diagnostics import did_you_mean
from ..methods import METHODS
from ..resolve import Context
from ..schema import model_config_schema
from .evaluation import objective_of
from .preference import DEFAULTS as PREFERENCE_DEFAULTS

SWEEP = ("sweep",)
# Training field -> the TrainingArguments attributes train.py sets from it.
TRAINING_TARGETS: dict[str, tuple[str, ...]] = {
    "learning_rate": ("learning_rate",),
    "epochs": ("num_train_epochs",),
    "max_steps": ("max_steps",),
    # The train batch only: every trial is scored with the same eval batch, on one yardstick.
    "batch_size": ("per_device_train_batch_size",),
    "gradient_accumulation_steps": ("gradient_accumulation_steps",),
    "warmup_steps": ("warmup_steps",),
    "weight_decay": ("weight_decay",),
    "max_grad_norm": ("max_grad_norm",),
    "lr_scheduler": ("lr_scheduler_type",),
}
RANGE_TYPES = ("loguniform", "uniform", "float", "int")


def schema_node(path: tuple[str, ...]) -> dict[str, Any] | None:
    """The schema of the model_config field at ``path``, or None when there is no such field."""
    node: dict[str, Any] = model_config_schema()
    for part in path:
        node = node.get("properties", {}).get(part)  # type: ignore[assignment]
        if node is None:
            return None
    return node


def _all_leaves(node: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    leaves = []
    for name, prop in node.get("properties", {}).items():
        if prop.get("type") == "object" and "properties" in prop:
            leaves += _all_leaves(prop, (*prefix, name))
        else:
            leaves.append((*prefix, name))
    return leaves


class _Probe:
    """A marker value: where a method's build writes it is the PEFT attribute of a parameter."""


def peft_attribute(method: str, params: dict[str, Any], name: str) -> str | None:
    """The attribute of the PEFT config that `fine_tuning.parameters.<name>` becomes, through
    the method's own renaming (LoHa/LoKr write lora_alpha as `alpha`), or None when the
    method does not pass it at all (IA3 has no r; OFT takes oft_block_size, not r)."""
    chosen = METHODS.get(method)
    if chosen is None or name not in chosen.parameters:
        return None
    probe = _Probe()
    try:
        adapters = chosen.build({**params, name: probe})
    except (TypeError, ValueError, KeyError, AttributeError):
        return None  # the build computes with the value: not settable as an attribute
    found = [arg.name for a in adapters for arg in a.config.args if arg.value is probe]
    return found[0] if len(adapters) == 1 and len(found) == 1 else None


def preference_settings(objective: str) -> list[str]:
    """The objective's numeric settings, each an attribute of its TRL config by the same name
    (beta; simpo_gamma; label_smoothing; KTO's weights). loss_type is not searched: it
    changes what the loss means, and so what eval_loss compares."""
    return [
        name
        for name in PREFERENCE_DEFAULTS.get(objective, {})
        if (schema_node(("fine_tuning", "preference", name)) or {}).get("type") == "number"
    ]


def sweepable(
    method: str, params: dict[str, Any] | None = None, objective: str = "sft"
) -> list[tuple[str, ...]]:
    """Every config path the chosen method's train.py can take per trial: the training fields,
    the numeric method parameters its PEFT config receives (given the other parameters, e.g.
    adapter_type), and a preference objective's numeric settings."""
    paths: list[tuple[str, ...]] = [("fine_tuning", "training", name) for name in TRAINING_TARGETS]
    paths += [("fine_tuning", "preference", name) for name in preference_settings(objective)]
    chosen = METHODS.get(method)
    if chosen is not None:
        for name in chosen.parameters:
            node = schema_node(("fine_tuning", "parameters", name)) or {}
            if node.get("type") not in ("integer", "number"):
                continue
            if peft_attribute(method, params or {}, name) is not None:
                paths.append(("fine_tuning", "parameters", name))
    return paths


def method_parameters(ctx: Context) -> dict[str, Any]:
    return dict(ctx.get("fine_tuning", "parameters") or {})


def resolve_name(ctx: Context, name: str) -> tuple[str, ...] | None:
    """A swept key -> its config path: the dotted path itself, or the one sweepable (else the
    one existing) parameter whose path ends with it. Reports an error and returns None when
    it names nothing, or several."""
    method = str(ctx.get("fine_tuning", "method"))
    candidates = sweepable(method, method_parameters(ctx), objective_of(ctx))
    parts = tuple(name.split("."))
    leaves = _all_leaves(model_config_schema())
    for pool in (candidates, leaves):
        found = [p for p in pool if p[-len(parts) :] == parts]
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            options = ", ".join(".".join(p) for p in found)
            ctx.error((*SWEEP, "parameters", name), f"sweep parameter {name!r} is ambiguous",
                      f"write its full path: {options}")  # fmt: skip
            return None
    names = [".".join(p) for p in candidates] + [p[-1] for p in candidates]
    ctx.error(
        (*SWEEP, "parameters", name),
        f"sweep parameter {name!r} is not a model_config parameter",
        did_you_mean(name, names) or f"sweepable: {', '.join(names[: len(candidates)])}",
    )
    return None


def check_sweepable(ctx: Context, name: str, path: tuple[str, ...]) -> bool:
    method = str(ctx.get("fine_tuning", "method"))
    params = method_parameters(ctx)
    objective = objective_of(ctx)
    if path in sweepable(method, params, objective):
        return True
    dotted = ".".join(path)
    if path[:2] == ("fine_tuning", "preference"):
        numeric = preference_settings(objective)
        ctx.error(
            (*SWEEP, "parameters", name),
            f"sweep parameter {dotted} is not a numeric setting of objective {objective}",
            f"{objective}'s: {', '.join(numeric)}"
            if numeric
            else "set fine_tuning.objective (dpo, orpo, kto or simpo) to sweep its settings",
        )
        return False
    if path[:2] == ("fine_tuning", "parameters") and path[-1] not in METHODS[method].parameters:
        ctx.error(
            (*SWEEP, "parameters", name),
            f"sweep parameter {dotted} does not apply to method {method!r}",
            f"{method!r} uses: {', '.join(METHODS[method].parameters) or 'no parameters'}",
        )
        return False
    if path[:2] == ("fine_tuning", "parameters") and "adapter_type" in params:
        ctx.error(
            (*SWEEP, "parameters", name),
            f"sweep parameter {dotted} is not used by adapter_type {params['adapter_type']!r}",
            "sweepable: " + ", ".join(".".join(p) for p in sweepable(method, params, objective)),
        )
        return False
    ctx.error(
        (*SWEEP, "parameters", name),
        f"{dotted} cannot be swept: train.py does not set it per trial",
        "sweepable: " + ", ".join(".".join(p) for p in sweepable(method, params, objective)),
    )
    return False


def check_range(ctx: Context, name: str, path: tuple[str, ...], spec: dict[str, Any]) -> bool:
    """The spec's shape and its values against the parameter's own schema."""
    where = (*SWEEP, "parameters", name)
    kind = spec["type"]
    field = schema_node(path) or {}
    problems: list[tuple[str, str | None]] = []
    if kind == "categorical":
        problems += _categorical_problems(spec, field)
    else:
        problems += _range_problems(spec, field, kind)
    for message, hint in problems:
        ctx.error(where, f"sweep parameter {name}: {message}", hint)
    return not problems


def _categorical_problems(spec: dict[str, Any], field: dict[str, Any]) -> list[tuple[str, Any]]:
    extra = [k for k in ("low", "high", "step", "log") if k in spec]
    if extra or "choices" not in spec:
        return [("a categorical parameter takes `choices` only", "e.g. choices: [8, 16, 32]")]
    problems = []
    for choice in spec["choices"]:
        if problem := _out_of_field(choice, field):
            problems.append((f"choice {choice!r} {problem}", None))
    if len(set(map(repr, spec["choices"]))) != len(spec["choices"]):
        problems.append(("choices repeat a value", None))
    return problems


def _range_problems(
    spec: dict[str, Any], field: dict[str, Any], kind: str
) -> list[tuple[str, Any]]:
    if "choices" in spec or "low" not in spec or "high" not in spec:
        return [(f"a {kind} parameter takes `low` and `high`", "e.g. low: 1.0e-5, high: 1.0e-2")]
    low, high = spec["low"], spec["high"]
    log = kind == "loguniform" or spec.get("log", False)
    problems: list[tuple[str, Any]] = []
    if field.get("type") == "integer" and kind != "int":
        problems.append((f"the parameter is an integer: use type int, not {kind}", None))
    if kind == "int" and not (_is_int(low) and _is_int(high) and _is_int(spec.get("step", 1))):
        problems.append(("an int range needs integer low, high and step", None))
    if field.get("type") not in ("integer", "number"):
        problems.append(("the parameter is not a number: use type categorical", None))
    if low > high:
        problems.append((f"the range is inverted: low {low} > high {high}", "swap them"))
    elif low == high:
        problems.append((f"the range is empty: low = high = {low}", "use a categorical choice"))
    if log and low <= 0:
        problems.append((f"a log scale needs low > 0, got {low}", None))
    if log and "step" in spec:
        problems.append(("step cannot be used with a log scale", None))
    if "log" in spec and kind == "loguniform":
        problems.append(("loguniform is always on a log scale: remove `log`", None))
    for bound in (low, high):
        if problem := _out_of_field(bound, field):
            problems.append((f"{bound} {problem}", None))
    if not problems and "anyOf" in field and not _one_alternative(low, high, field):
        # max_steps: -1 or >= 1, so a range from -1 would also draw 0, which it does not take.
        words = next((a["errorMessage"] for a in field["anyOf"] if "errorMessage" in a), None)
        problems.append(
            (f"the range {low}..{high} includes values the parameter does not take", words)
        )
    return problems


def _one_alternative(low: Any, high: Any, field: dict[str, Any]) -> bool:
    """Whether a single one of the field's `anyOf` alternatives takes both ends (and so,
    alternatives being intervals or constants, everything between)."""
    for alternative in field["anyOf"]:
        if "const" in alternative:
            continue  # one value only: a range is never within it
        merged = {**field, **alternative}
        merged.pop("anyOf")
        if _out_of_field(low, merged) is None and _out_of_field(high, merged) is None:
            return True
    return False


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _out_of_field(value: Any, field: dict[str, Any]) -> str | None:
    """Why ``value`` is not a valid value of the parameter, from its schema, or None."""
    if "enum" in field:
        return None if value in field["enum"] else f"is not one of {', '.join(field['enum'])}"
    if "anyOf" in field:
        alternatives = [{**field, **a} for a in field["anyOf"]]
        for alternative in alternatives:
            alternative.pop("anyOf")
        found = [_out_of_field(value, a) for a in alternatives]
        if all(found):
            words = next((a["errorMessage"] for a in field["anyOf"] if "errorMessage" in a), None)
            return f"is not a value of this parameter ({words})" if words else found[0]
        return None
    if "const" in field:
        return None if value == field["const"] else f"is not {field['const']}"
    kind = field.get("type")
    if kind in ("integer", "number"):
        if not isinstance(value, int | float) or isinstance(value, bool) or math.isnan(value):
            return "is not a number"
        if math.isinf(value):
            return "is not finite"
        if kind == "integer" and not _is_int(value):
            return "is not an integer"
        for key, ok, words in (
            ("minimum", lambda v, b: v >= b, "below the minimum"),
            ("exclusiveMinimum", lambda v, b: v > b, "not above the minimum"),
            ("maximum", lambda v, b: v <= b, "above the maximum"),
            ("exclusiveMaximum", lambda v, b: v < b, "not below the maximum"),
        ):
            if key in field and not ok(value, field[key]):
                return f"is {words} {field[key]} of this parameter"
    return None

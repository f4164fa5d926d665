"""The seed's nested `quality_control` block (`filters`, `validation`, `metrics`) -> the flat
settings lfm.dataset reads, in one place, each value recorded with where it came from.

The seed writes ``quality_control: {filters: {language_detection: en, ...}, validation:
{duplicate_detection: true, ...}, metrics: {diversity_score: ">0.7", ...}}``; lfm's own flat
keys (``language``, ``duplicate_detection``, ``gates``, ...) keep working. The nested sub-objects
are removed from the resolved config so the bundle and `lfm dataset` see one shape.
"""

from __future__ import annotations

from lfm.runtime import trust
from lfm.runtime.dataset_gates import GateError, parse_gate

from ..diagnostics import dotted
from ..resolve import ROOT, Context

QC = ("dataset", "quality_control")

# nested (group, key) -> (flat path under quality_control, a flag the nested form implies)
NESTED: dict[tuple[str, str], tuple[tuple[str, ...], tuple[str, bool] | None]] = {
    ("filters", "minimum_length"): (("minimum_length",), None),
    ("filters", "maximum_length"): (("maximum_length",), None),
    ("filters", "language_detection"): (("language",), None),
    # Under `filters` a threshold means the filter is on.
    ("filters", "toxicity_threshold"): (("toxicity_threshold",), ("toxicity_filter", True)),
    ("filters", "factual_consistency"): (
        ("factual_consistency",),
        ("factual_verification", True),
    ),
    ("validation", "duplicate_detection"): (("duplicate_detection",), None),
    ("validation", "coherence_scoring"): (("coherence_scoring",), None),
    ("validation", "domain_relevance"): (("domain_relevance",), None),
    ("metrics", "diversity_score"): (("gates", "diversity_score"), None),
    ("metrics", "quality_score"): (("gates", "quality_score"), None),
    ("metrics", "domain_relevance"): (("gates", "domain_relevance"), None),
    ("metrics", "coverage_analysis"): (("coverage_analysis",), None),
}
GROUPS = ("filters", "validation", "metrics")


def quality_control_shape(ctx: Context) -> None:
    if not isinstance(ctx.get(*QC), dict):
        return
    for (group, key), (flat, implied) in NESTED.items():
        nested = (*QC, group, key)
        if not ctx.user_set(*nested):
            continue
        name = f"quality_control.{group}.{key}"
        if ctx.user_set(*QC, *flat):
            ctx.error(
                nested,
                f"{name} and quality_control.{'.'.join(flat)} set the same thing; keep one",
                "write it once: the nested (seed) and flat forms mean the same",
            )
            continue
        value = ctx.get(*nested)
        where = ctx.decisions.pop(dotted((*ROOT, *nested)), None)
        written = f" ({where.reason})" if where else ""
        ctx.decide(
            (*QC, *flat), value, "quality_control_shape", f"from {name}{written}, the seed's shape"
        )
        if implied and value is not None and not ctx.user_set(*QC, implied[0]):
            ctx.decide(
                (*QC, implied[0]),
                implied[1],
                "quality_control_shape",
                f"{name} is given under `filters`, so that filter is on",
            )
    qc = ctx.get(*QC)
    for group in GROUPS:
        qc.pop(group, None)
    _check_gates(ctx)
    _check_scorer(ctx)


def _check_scorer(ctx: Context) -> None:
    """A scorer named as module:function is code, and a config is not the user's say-so: the
    run imports it only where they allow it (lfm.runtime.trust); the standard library never."""
    spec = ctx.get(*QC, "toxicity_scorer")
    if not isinstance(spec, str) or ":" not in spec:
        return
    module = spec.partition(":")[0]
    where = (*QC, "toxicity_scorer")
    if trust.standard_library(module):
        ctx.error(
            where,
            f"quality_control.toxicity_scorer {spec!r} names a function of Python's standard "
            "library, which is not a scorer; lfm never imports it",
            "name your own scorer module, or remove the setting for the offline word list",
        )
        return
    ctx.warn(
        where,
        f"quality_control.toxicity_scorer names code to import ({module}); lfm dataset and "
        "train.py import it only where you allow it",
        f"run them with {trust.ENV}={module} or --trust-code {module}",
    )


def _check_gates(ctx: Context) -> None:
    """A gate that is not a comparison with a number is a compile error, not a surprise later."""
    for metric, threshold in (ctx.get(*QC, "gates") or {}).items():
        try:
            parse_gate(metric, threshold)
        except GateError as exc:
            nested = (*QC, "metrics", metric)
            path = nested if ctx.user_set(*nested) else (*QC, "gates", metric)
            ctx.error(path, str(exc))

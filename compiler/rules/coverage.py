"""Settings this lfm version accepts and records but does not act on yet: say so."""

from __future__ import annotations

from ..resolve import Context

# Blocks whose artifacts (evaluate.py, k8s manifests, dataset builder) come later.
NOT_YET_EMITTED = (
    (("evaluation",), "evaluate.py"),
    (("deployment",), "deployment manifests"),
    (("dataset", "quality_control"), "dataset quality filters"),
    (("dataset", "synthetic_generation"), "synthetic data generation"),
    (("dataset", "augmentation"), "dataset augmentation"),
    (("dataset", "preprocessing", "qa_generation"), "Q&A generation from documents"),
    (("dataset", "validation", "quality_threshold"), "dataset quality scoring"),
)


def settings_not_yet_used(ctx: Context) -> None:
    for path, feature in NOT_YET_EMITTED:
        if ctx.user_set(*path):
            ctx.warn(
                path,
                f"{'.'.join(path)} is recorded in lfm.lock.json, but this lfm version emits no "
                f"{feature} yet",
            )

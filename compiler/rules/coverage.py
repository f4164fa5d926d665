"""Settings this lfm version accepts and records but does not act on yet: say so."""

from __future__ import annotations

from ..resolve import Context

# Blocks whose artifacts (synthetic data) come later.
# (Document-dataset settings are checked in rules/data.py: they act on document sources.)
NOT_YET_EMITTED = ((("dataset", "synthetic_generation"), "synthetic data generation"),)


def settings_not_yet_used(ctx: Context) -> None:
    for path, feature in NOT_YET_EMITTED:
        if ctx.user_set(*path):
            ctx.warn(
                path,
                f"{'.'.join(path)} is recorded in lfm.lock.json, but this lfm version emits no "
                f"{feature} yet",
            )

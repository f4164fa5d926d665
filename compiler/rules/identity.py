"""The model's name."""

from __future__ import annotations

import re

from ..resolve import Context


def name_from_file(ctx: Context) -> None:
    if ctx.user_set("name"):
        return
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", ctx.config_path.stem).strip("._-") or "model"
    ctx.decide(
        ("name",),
        stem,
        "name_from_file",
        f"no name set; named after the config file {ctx.config_path.name}",
    )

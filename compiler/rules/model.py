"""Where the base model comes from."""

from __future__ import annotations

from ..paths import is_local
from ..resolve import Context


def base_model_location(ctx: Context) -> None:
    base = ctx.get("base_model")
    if not isinstance(base, str):
        return
    if is_local(base):
        where = "a local directory, relative to the config file, loaded by path (works offline)"
    else:
        where = "a Hugging Face hub id, downloaded or read from the HF cache when the script starts"
    ctx.derive(
        "base_model_source",
        "local" if is_local(base) else "hub",
        "base_model_location",
        f"{base!r} is {where}",
    )

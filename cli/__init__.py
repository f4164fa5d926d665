"""lfm.cli: the commands. On top of every library package; none of them imports it."""

from .main import lfm, llamafarm

__all__ = ["lfm", "llamafarm"]

"""lfm.compiler: config file -> validated, resolved plan -> deterministic bundle.

Light by design: nothing here imports torch, transformers or peft.
"""

from lfm.runtime import __version__

__all__ = ["__version__"]

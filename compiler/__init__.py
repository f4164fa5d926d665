"""lfm.compiler: config file -> validated, resolved plan -> deterministic bundle.

Light by design: nothing here imports torch, transformers or peft.
"""

__version__ = "0.1.0"

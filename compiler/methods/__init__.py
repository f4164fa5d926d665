"""The fine-tuning methods this lfm version can compile, keyed by their config name.

One module per method family; each registers its methods here. A method says which
`fine_tuning.parameters` fields it reads and how they become the PEFT config (or configs) that
train.py builds. This registry is the only list of methods: the schema's `method` enum must
equal it (a test checks), and registering a name twice is an error.
"""

from __future__ import annotations

from .base import Adapter, Arg, Method, PeftCall, readable

METHODS: dict[str, Method] = {}


def register(method: Method) -> Method:
    if method.name in METHODS:
        raise ValueError(f"method {method.name!r} is registered twice")
    METHODS[method.name] = method
    return method


from . import adapters, full, hybrid, lora, prompt  # noqa: E402  (modules register themselves)

for _module in (lora, full, adapters, prompt, hybrid):
    for _method in _module.METHODS:
        register(_method)

__all__ = ["METHODS", "Adapter", "Arg", "Method", "PeftCall", "readable", "register"]

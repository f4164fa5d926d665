"""What a method is: the parameters it reads and the PEFT configs it builds from them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


class Code(str):
    """A Python expression written by lfm itself (never from a config), emitted unquoted."""


@dataclass(frozen=True)
class Arg:
    """One keyword argument of an emitted call, written literally: `name=value  # comment`."""

    name: str
    value: Any
    comment: str = ""  # why, for a reviewer, where the value is not what they would expect


@dataclass(frozen=True)
class PeftCall:
    """`ClassName(arg=value, ...)`: a peft config as train.py writes it."""

    class_name: str
    args: tuple[Arg, ...]


@dataclass(frozen=True)
class Adapter:
    """One trained adapter: its name (its folder in the output directory) and its config."""

    name: str
    config: PeftCall


Params = dict[str, Any]


@dataclass(frozen=True)
class Method:
    name: str
    summary: str
    parameters: tuple[str, ...]  # fine_tuning.parameters fields this method reads (+ merge_on_save)
    default_learning_rate: float
    build: Callable[[Params], tuple[Adapter, ...]]  # resolved parameters -> adapters to train
    quantize_4bit: bool = False
    mergeable: bool = False  # one adapter whose weights peft can fold into the base (merge_on_save)
    # Which fields need a per-architecture default when unset (see rules/methods.py).
    needs_lora_targets: bool = False
    needs_adapter_targets: bool = False


def call(class_name: str, params: Params, names: tuple[str, ...], **fixed: Any) -> PeftCall:
    """A PeftCall with `fixed` arguments first, then each set parameter in `names` order."""
    args = [Arg(k, v) for k, v in fixed.items()]
    args += [Arg(n, params[n]) for n in names if params.get(n) is not None]
    return PeftCall(class_name, tuple(args))


def readable(method: Method) -> tuple[str, ...]:
    """Every fine_tuning.parameters field the method accepts."""
    return (*method.parameters, "merge_on_save") if method.mergeable else method.parameters

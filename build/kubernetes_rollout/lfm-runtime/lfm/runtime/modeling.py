"""Load the base model and tokenizer named by ``base_model``.

Both loaders turn the usual failures (a local path that does not exist, a hub id
that cannot be fetched offline) into a one-line :class:`RuntimeConfigError`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from . import hub, paths
from .errors import RuntimeConfigError, first_line

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]

# PEFT methods whose virtual tokens are prepended to every sequence.
PROMPT_LEARNING = ("PREFIX_TUNING", "PROMPT_TUNING", "P_TUNING", "MULTITASK_PROMPT_TUNING")
# Config spelling -> the value handed to from_pretrained's ``dtype=`` argument.
_DTYPES = ("auto", "bfloat16", "float16", "float32")


def load_tokenizer(
    name_or_path: str,
    *,
    base_dir: PathLike | None = None,
    trust_remote_code: bool = False,
) -> Any:
    """Load a tokenizer ready for causal-LM training (pad token set, right padding)."""
    from transformers import AutoTokenizer

    source = _source(name_or_path, base_dir)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        raise _load_error("tokenizer", name_or_path, source, exc) from exc
    _ensure_pad_token(tokenizer, name_or_path)
    # Right padding keeps each example's tokens at the positions they were labelled at.
    tokenizer.padding_side = "right"
    return tokenizer


def load_model(
    name_or_path: str,
    *,
    base_dir: PathLike | None = None,
    dtype: str = "auto",
    gradient_checkpointing: bool = False,
    attn_implementation: str | None = None,
    quantization_config: Any = None,
    trust_remote_code: bool = False,
) -> Any:
    """Load ``AutoModelForCausalLM`` weights, optionally with gradient checkpointing on.

    With a ``quantization_config`` (QLoRA's 4-bit ``BitsAndBytesConfig``) the weights are
    quantized on load; bitsandbytes must be installed and have a backend for this device.
    """
    from transformers import AutoModelForCausalLM

    source = _source(name_or_path, base_dir)
    kwargs: dict[str, Any] = {"dtype": _torch_dtype(dtype), "trust_remote_code": trust_remote_code}
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    if quantization_config is not None:
        _require_bitsandbytes()
        kwargs["quantization_config"] = quantization_config
    try:
        model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
    except (OSError, ValueError) as exc:
        raise _load_error("model", name_or_path, source, exc) from exc
    if gradient_checkpointing:
        _enable_gradient_checkpointing(model)
    return model


def _require_bitsandbytes() -> None:
    """QLoRA needs a working bitsandbytes; say so before transformers fails deep inside loading."""
    try:
        import bitsandbytes  # noqa: F401  (import fails when no backend fits this machine)
    except ImportError:
        raise RuntimeConfigError(
            "fine_tuning.method 'qlora' needs bitsandbytes: pip install 'lfm[qlora]' "
            "(it quantizes the base model to 4-bit NF4; CUDA GPUs, and CPUs from 0.45)"
        ) from None
    except Exception as exc:  # installed, but it cannot run here (e.g. no native library)
        raise RuntimeConfigError(
            f"fine_tuning.method 'qlora': bitsandbytes is installed but cannot run here "
            f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); install a build "
            "for this device or use method: lora"
        ) from None


def _source(name_or_path: str, base_dir: PathLike | None) -> str:
    """Resolve a local path and check it exists; pass a hub id through once the hub answers
    or the model is in the local cache (see :mod:`.hub`)."""
    source = paths.resolve(name_or_path, base_dir)
    if paths.is_local(name_or_path) and not Path(source).exists():
        raise RuntimeConfigError(
            f"base_model: local path {source} does not exist; fix the path, or create a small "
            f"local model for a quick run with `lfm dev tiny-model DIR`"
        )
    if not paths.is_local(name_or_path) and not Path(source).exists():
        hub.prepare("base_model", name_or_path)
    return source


def _load_error(what: str, name_or_path: str, source: str, exc: Exception) -> RuntimeConfigError:
    """Explain a from_pretrained failure in one line."""
    reason = first_line(exc)
    if paths.is_local(name_or_path):
        return RuntimeConfigError(
            f"base_model: could not load a {what} from {source} ({reason}); the directory must "
            f"hold a saved Hugging Face {what} (e.g. from `lfm dev tiny-model DIR`)"
        )
    return RuntimeConfigError(
        f"base_model: could not load the {what} for hub id {name_or_path!r} ({reason}); check "
        f"the id and your network, pre-download it and set HF_HUB_OFFLINE=1, or point "
        f"base_model at a local directory (./path)"
    )


def transformers_model(model: Any) -> Any:
    """The transformers model under a PEFT wrapper (PEFT forwards attribute lookups too)."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


def prompt_learning(model: Any) -> str | None:
    """The PEFT method that prepends virtual tokens to every sequence (e.g. ``prompt_tuning``).

    Those tokens shift every position, which packing and loss positions both rely on.
    """
    for config in (getattr(model, "peft_config", None) or {}).values():
        kind = str(getattr(getattr(config, "peft_type", None), "value", ""))
        if kind in PROMPT_LEARNING:
            return kind.lower()
    return None


def _ensure_pad_token(tokenizer: Any, name_or_path: str) -> None:
    """Reuse eos (or unk) as the pad token: adding a new token would resize the model."""
    if tokenizer.pad_token is not None:
        return
    fallback = tokenizer.eos_token or tokenizer.unk_token
    if fallback is None:
        raise RuntimeConfigError(
            f"base_model: the tokenizer of {name_or_path} has no pad, eos or unk token to pad "
            f"with; use a tokenizer that defines an eos token"
        )
    tokenizer.pad_token = fallback


def _torch_dtype(dtype: str) -> Any:
    """Map a config dtype name to what ``from_pretrained(dtype=...)`` accepts."""
    if dtype not in _DTYPES:
        raise RuntimeConfigError(
            f"model dtype {dtype!r} is not supported; use one of {', '.join(_DTYPES)}"
        )
    if dtype == "auto":
        return "auto"
    import torch

    return getattr(torch, dtype)


def _enable_gradient_checkpointing(model: Any) -> None:
    """Trade compute for memory in a way that also works once PEFT freezes the base."""
    # Later 5.x releases renamed the method and deprecated the old name; use what exists.
    enable = getattr(model, "activation_checkpointing_enable", None)
    if enable is None:
        enable = model.gradient_checkpointing_enable
    # Non-reentrant checkpointing is torch's recommended mode and tolerates frozen inputs.
    enable({"use_reentrant": False})
    # The KV cache is useless in training and conflicts with checkpointing.
    model.config.use_cache = False
    # With PEFT the embeddings are frozen; this keeps a grad path into checkpointed blocks.
    model.enable_input_require_grads()


def check_target_modules(model: Any, peft_config: Any, field: str = "target_modules") -> None:
    """Fail with the field's name when a configured target module is not in the model.

    peft's own error is a traceback deep inside `get_peft_model`; this names the module, the
    closest real one, and the model's linear layers.
    """
    import difflib

    import torch

    targets = getattr(peft_config, "target_modules", None)
    if not targets or isinstance(
        targets, str
    ):  # None: peft's defaults; a string: all-linear or a regex
        return
    names = [name for name, _ in model.named_modules() if name]
    leaves = sorted(
        {
            name.rsplit(".", 1)[-1]
            for name, m in model.named_modules()
            if isinstance(m, torch.nn.Linear)
        }
    )
    for target in sorted(targets):
        if not any(name == target or name.endswith(f".{target}") for name in names):
            close = difflib.get_close_matches(target, leaves, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise RuntimeConfigError(
                f"fine_tuning.parameters.{field}: {target!r} matches no module of the base "
                f"model; {hint}its linear layers are: {', '.join(leaves)}"
            )

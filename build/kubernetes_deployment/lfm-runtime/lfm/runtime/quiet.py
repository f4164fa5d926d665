"""Third-party notices that a run's user cannot act on, kept off the terminal.

- transformers 5.x's rename of ``gradient_checkpointing``: train.py writes the name every 5.x
  release takes, which newer ones call deprecated (and peft still asks
  ``is_gradient_checkpointing`` when it loads an adapter);
- torch's pinned-memory notice on a machine without a GPU;
- DeepSpeed's "Setting accelerator to CPU" when it is imported on such a machine (by accelerate
  or transformers, whether or not the run uses DeepSpeed);
- bitsandbytes' "Failed to load CPU gemm_4bit_forward from kernels-community" when it is
  imported on a CPU with AVX-512 BF16 (by peft, whatever the method): it tries to fetch a kernel
  from the hub, which lfm never lets code from the hub run, and falls back to its own.

Real problems still reach the user: only these messages are filtered.
"""

from __future__ import annotations

import logging
import warnings

_DEEPSPEED_NOTICES = ("Setting accelerator to CPU", "Setting ds_accelerator to")
_BITSANDBYTES_NOTICE = "Failed to load CPU gemm_4bit_forward from kernels-community"


def _not_a_deepspeed_notice(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith(_DEEPSPEED_NOTICES)


def _not_the_bitsandbytes_kernel_notice(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith(_BITSANDBYTES_NOTICE)


def quiet_third_party() -> None:
    warnings.filterwarnings(
        "ignore", message=r"`(is_)?gradient_checkpointing\w*` is deprecated", category=FutureWarning
    )
    warnings.filterwarnings(
        "ignore",
        message=r"'pin_memory' argument is set as true but no accelerator",
        category=UserWarning,
    )
    # DeepSpeed logs through its "DeepSpeed" logger, which it configures when imported; a
    # filter on the logger object survives that.
    deepspeed = logging.getLogger("DeepSpeed")
    if _not_a_deepspeed_notice not in deepspeed.filters:
        deepspeed.addFilter(_not_a_deepspeed_notice)
    # Logged while bitsandbytes is imported: the filter goes on its logger before that.
    kernels = logging.getLogger("bitsandbytes.backends.cpu.ops")
    if _not_the_bitsandbytes_kernel_notice not in kernels.filters:
        kernels.addFilter(_not_the_bitsandbytes_kernel_notice)

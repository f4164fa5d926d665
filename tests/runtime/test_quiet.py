"""Only the third-party notices a user cannot act on are filtered; real warnings still show."""

from __future__ import annotations

import logging

from lfm.runtime.quiet import quiet_third_party


def test_the_bitsandbytes_kernel_notice_is_dropped_and_other_warnings_kept(caplog) -> None:
    quiet_third_party()
    quiet_third_party()  # twice (train.py and the CLI both call it): one filter
    logger = logging.getLogger("bitsandbytes.backends.cpu.ops")
    assert len(logger.filters) == 1
    with caplog.at_level(logging.WARNING):
        logger.warning("Failed to load CPU gemm_4bit_forward from kernels-community: %s", "x")
        logger.warning("a real problem")
        logging.getLogger("DeepSpeed").warning("Setting accelerator to CPU.")
    assert [r.getMessage() for r in caplog.records] == ["a real problem"]

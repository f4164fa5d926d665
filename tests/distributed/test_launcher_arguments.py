"""A multi-process train.py accepts the `--local_rank` the deepspeed launcher passes."""

from __future__ import annotations

import subprocess
import sys

import pytest
from lfm.compiler.pipeline import compile_config

pytest.importorskip("transformers")


def test_local_rank_is_accepted_and_other_arguments_are_not(write_config, tmp_path):
    path = write_config(
        "model_config:\n  base_model: m\n  distributed: {strategy: deepspeed_zero2, gpus: 2}\n"
    )
    train = tmp_path / "train.py"
    train.write_text(compile_config(path, "bundle").files["train.py"])
    # The same parser main() uses, without training: --help lists the launcher's option.
    helped = subprocess.run(
        [sys.executable, str(train), "--local_rank=1", "--help"], capture_output=True, text=True
    )
    assert helped.returncode == 0 and "--local_rank" in helped.stdout, helped.stderr
    wrong = subprocess.run(
        [sys.executable, str(train), "--lcoal_rank=1"], capture_output=True, text=True
    )
    assert wrong.returncode == 2 and "unrecognized arguments" in wrong.stderr

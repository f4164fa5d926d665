"""A command whose extra is not installed says so in one line, wherever the missing package is
imported (a missing package is simulated with ``sys.modules[name] = None``, in a new process)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DOCUMENTS = str(REPO / "examples" / "documents")
PROBE = """
import sys
sys.modules[{module!r}] = None
from lfm.cli import lfm
lfm.main({args!r}, prog_name="lfm")
"""


@pytest.mark.parametrize(
    ("module", "args", "install"),
    [
        ("datasketch", ["dataset", "create", "--source", DOCUMENTS, "-o", "d.jsonl"], "dataset"),
        ("pypdf", ["dataset", "create", "--source", DOCUMENTS, "-o", "d.jsonl"], "dataset"),
        ("torch", ["dev", "tiny-model", "tiny"], "train"),
    ],
)
def test_a_missing_extra_is_one_line(module, args, install, tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(module=module, args=args)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1, done.stderr[-2000:]
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: ") and module in last, last
    assert last.endswith(f"pip install 'lfm[{install}]'"), last

"""Compile-side commands never import torch, transformers or peft (they cost seconds)."""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "transformers", "peft", "accelerate", "datasets")

PROBE = """
import sys
from lfm.cli import lfm
try:
    lfm.main(sys.argv[1:], standalone_mode=False)
except SystemExit:
    pass
heavy = sorted(m for m in sys.modules if m.split('.')[0] in {heavy!r})
print('HEAVY:' + ','.join(heavy))
"""


@pytest.mark.parametrize(
    "args",
    [
        ["validate", "examples/seed_unified.json"],
        ["explain", "examples/seed_unified.json"],
        ["compile", "examples/quickstart.yaml", "-o", "{tmp}/b"],
        ["compile", "examples/quickstart.yaml", "-o", "build/quickstart", "--check"],
        ["schema"],
        ["--help"],
    ],
)
def test_compile_side_commands_stay_light(args, tmp_path):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in args]
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY), *argv],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "HEAVY:\n" in done.stdout or done.stdout.rstrip().endswith("HEAVY:"), done.stdout[-500:]

"""`lfm serve` and `lfm chat` need only the serve extra: the registry's packages (semver,
platformdirs) may be missing, and serving still imports."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("starlette")

BLOCKED = """
import sys
for name in ("semver", "platformdirs"):
    sys.modules[name] = None  # `import semver` now fails, as without the registry extra
import lfm.serving.app, lfm.serving.server, lfm.serving.chat, lfm.serving.rollout_api
import lfm.cli.serve, lfm.cli.chat
loaded = sorted(m for m in sys.modules if m.startswith("lfm.registry"))
assert not loaded, loaded
print("imported")
"""


def test_serving_imports_without_the_registry_extra():
    done = subprocess.run([sys.executable, "-c", BLOCKED], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "imported" in done.stdout

"""resolve(): what `lfm deploy` and serving call to turn a reference into verified local files."""

import os
from pathlib import Path

import pytest
from lfm.registry import RegistryError, resolve
from lfm.registry.manifest import sha256_file


@pytest.fixture
def two_versions(make_adapter_copy, cli, adapter_dir, tmp_path):
    for version in ("1.0.0", "1.1.0"):
        model = make_adapter_copy(adapter_dir, tmp_path / version, version)
        cli(
            "register",
            "--model",
            str(model),
            "--name",
            "mqa",
            "--version",
            version,
            "--tag",
            "domain=medical",
        )
    cli("promote", "mqa:1.0.0", "--env", "production")


@pytest.mark.parametrize(
    "reference, version",
    [
        ("mqa", "1.1.0"),
        ("mqa:latest", "1.1.0"),
        ("mqa:1.0.0", "1.0.0"),
        ("mqa@production", "1.0.0"),
    ],
)
def test_resolve_forms(two_versions, reference, version):
    found = resolve(reference)
    assert (found.name, found.version) == ("mqa", version)
    assert (found.path / "README.md").read_text() == f"adapter {version}\n"
    assert found.record.tags == {"domain": "medical"}
    assert found.record.type == "adapter"
    for entry in found.record.files:
        assert sha256_file(found.path / entry.path) == entry.sha256


def test_resolve_follows_promotion_and_rollback(two_versions, cli):
    cli("promote", "mqa:1.1.0", "--env", "production")
    assert resolve("mqa@production").version == "1.1.0"
    cli("rollback", "mqa", "--env", "production")
    assert resolve("mqa@production").version == "1.0.0"


def test_resolve_with_an_explicit_registry(two_versions, registry_env, monkeypatch):
    monkeypatch.delenv("LFM_REGISTRY")
    assert resolve("mqa:1.0.0", registry=str(registry_env)).version == "1.0.0"


def test_resolve_detects_a_tampered_checkout_and_never_serves_it(two_versions, registry_env):
    found = resolve("mqa:1.0.0")
    readme = found.path / "README.md"
    os.chmod(readme, 0o644)
    readme.write_text("tampered")  # hard-linked: this also damages the stored blob
    with pytest.raises(RegistryError, match="corrupted"):
        resolve("mqa:1.0.0")


@pytest.mark.parametrize(
    "reference, message",
    [
        ("nope", "no model named 'nope'"),
        ("mqa:3.0.0", "has no version 3.0.0"),
        ("mqa@staging", "has no version in staging"),
        ("mqa:1.0", "bad version"),
        ("bad name", "bad model name"),
    ],
)
def test_resolve_errors(two_versions, reference, message):
    with pytest.raises(RegistryError, match=message):
        resolve(reference)


def test_parallel_resolves_of_one_version_all_succeed(two_versions, registry_env):
    import subprocess
    import sys

    code = "from lfm.registry import resolve; print(resolve('mqa@production').path)"
    env = {**os.environ, "LFM_REGISTRY": str(registry_env)}
    procs = [
        subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(6)
    ]
    paths = {p.communicate(timeout=120)[0].strip() for p in procs}
    assert all(p.returncode == 0 for p in procs)
    assert len(paths) == 1
    assert (Path(paths.pop()) / "README.md").read_text() == "adapter 1.0.0\n"

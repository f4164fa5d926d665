"""pull copies or links a version, verifying every hash; a corrupted blob is never served."""

import os
from pathlib import Path

import pytest
from lfm.registry.manifest import sha256_file


def _files(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): sha256_file(p) for p in folder.rglob("*") if p.is_file()
    }


@pytest.fixture
def registered(cli, adapter_dir):
    cli("register", "--model", str(adapter_dir), "--name", "mqa", "--version", "1.1.0")
    return adapter_dir


def _blob(registry: Path, digest: str) -> Path:
    return registry / "blobs" / "sha256" / digest[:2] / digest


def test_pull_copies_the_exact_files(cli, registered, tmp_path):
    out = cli("pull", "mqa:1.1.0", "--to", str(tmp_path / "models" / "mqa")).output
    assert "every sha256 verified" in out
    assert _files(tmp_path / "models" / "mqa") == _files(registered)


def test_pull_then_load_with_peft(cli, registered, tmp_path):
    """The pulled adapter is what peft loads: the real consumer of these files."""
    from peft import PeftConfig

    cli("pull", "mqa", "--to", str(tmp_path / "p"))
    assert PeftConfig.from_pretrained(str(tmp_path / "p")).peft_type == "LORA"


def test_pull_link_shares_storage(cli, registered, tmp_path, registry_env):
    cli("pull", "mqa:1.1.0", "--to", str(tmp_path / "linked"), "--link")
    weights = tmp_path / "linked" / "adapter_model.safetensors"
    digest = sha256_file(weights)
    assert os.path.samefile(weights, _blob(registry_env, digest))
    assert not os.access(weights, os.W_OK) or os.geteuid() == 0  # read-only for the owner


def test_pull_refuses_to_overwrite_without_force(cli, registered, tmp_path):
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "mine.txt").write_text("user data")
    result = cli("pull", "mqa", "--to", str(dest), expect=1)
    assert "pass --force" in result.output
    assert (dest / "mine.txt").read_text() == "user data"
    cli("pull", "mqa", "--to", str(dest), "--force")
    assert not (dest / "mine.txt").exists()


@pytest.mark.parametrize("link", [False, True])
def test_a_corrupted_blob_is_detected_and_never_served(
    cli, registered, tmp_path, registry_env, link
):
    digest = sha256_file(registered / "adapter_model.safetensors")
    blob = _blob(registry_env, digest)
    os.chmod(blob, 0o644)
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(data))
    dest = tmp_path / "out"
    args = ["pull", "mqa:1.1.0", "--to", str(dest)] + (["--link"] if link else [])
    result = cli(*args, expect=1)
    assert "adapter_model.safetensors" in result.output and "corrupted" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not dest.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]  # no staging left
    assert "corrupted" in cli("registry", "verify", expect=1).output
    assert "corrupted" in cli("show", "mqa:1.1.0", "--verify", expect=1).output
    # Registering the same content again repairs the store.
    cli("register", "--model", str(registered), "--name", "mqa", "--version", "1.1.0")
    cli("registry", "verify")
    cli("pull", "mqa:1.1.0", "--to", str(dest))
    assert _files(dest) == _files(registered)


def test_a_missing_blob_is_reported(cli, registered, tmp_path, registry_env):
    blob = _blob(registry_env, sha256_file(registered / "adapter_config.json"))
    blob.unlink()
    result = cli("pull", "mqa", "--to", str(tmp_path / "x"), expect=1)
    assert "missing from the registry store" in result.output


def test_pull_unknown_references(cli, registered, tmp_path):
    assert (
        "no model named 'nope'" in cli("pull", "nope", "--to", str(tmp_path / "a"), expect=1).output
    )
    assert "has no version 9.9.9" in cli("pull", "mqa:9.9.9", expect=1).output
    assert "has no version in production" in cli("pull", "mqa@production", expect=1).output
    assert "bad version" in cli("pull", "mqa:1.1", expect=1).output

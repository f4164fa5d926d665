"""Concurrent writers lose nothing; a killed register leaves no partial version; errors are clean.

These run real `lfm` processes against one registry directory, as users and CI jobs would.
"""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

LFM = [sys.executable, "-m", "lfm.cli"]


def _env(registry: Path) -> dict[str, str]:
    return {**os.environ, "LFM_REGISTRY": str(registry), "LFM_USER": "tester"}


def _start(registry: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [*LFM, *args],
        env=_env(registry),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_twenty_parallel_registers_lose_and_corrupt_nothing(
    make_adapter_copy, adapter_dir, tmp_path, cli, registry_env
):
    models = [make_adapter_copy(adapter_dir, tmp_path / f"m{i}", str(i)) for i in range(20)]
    rival = make_adapter_copy(adapter_dir, tmp_path / "rival", "rival")
    # 20 distinct versions, plus 2 identical re-registrations and 1 conflicting one, all at once
    # on a registry that does not exist yet (so its creation races too).
    jobs = [
        ("--model", str(m), "--name", "mqa", "--version", f"1.0.{i}") for i, m in enumerate(models)
    ]
    jobs += [("--model", str(models[0]), "--name", "mqa", "--version", "1.0.0")] * 2
    jobs += [("--model", str(rival), "--name", "mqa", "--version", "1.0.1")]
    procs = [_start(registry_env, "register", *job) for job in jobs]
    outputs = [(p.wait(timeout=300), p.stdout.read()) for p in procs]
    for i, (code, out) in enumerate(outputs[:22]):
        assert code == 0 or i == 1, out
    # model 1 and the rival race for 1.0.1: exactly one wins, the other gets a one-line refusal.
    (code_1, out_1), (rival_code, rival_out) = outputs[1], outputs[22]
    assert sorted([code_1, rival_code]) == [0, 1], (out_1, rival_out)
    loser = rival_out if rival_code else out_1
    assert "already registered with different content" in loser and "Traceback" not in loser
    winner = "rival" if rival_code == 0 else "1"
    cli("pull", "mqa:1.0.1", "--to", str(tmp_path / "out1"))
    assert (tmp_path / "out1" / "README.md").read_text() == f"adapter {winner}\n"
    listed = json.loads(cli("list", "--json").output)
    assert [r["version"] for r in listed] == [f"1.0.{i}" for i in range(20)]
    cli("registry", "verify")
    for i in (0, 7, 19):  # each version holds its own content
        cli("pull", f"mqa:1.0.{i}", "--to", str(tmp_path / f"out{i}"))
        assert (tmp_path / f"out{i}" / "README.md").read_text() == f"adapter {i}\n"
    audit = json.loads(cli("registry", "audit", "--json").output)
    assert sum(e["action"] == "register" for e in audit) == 20
    conn = sqlite3.connect(registry_env / "registry.db")
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_parallel_promotions_keep_one_consistent_history(
    make_adapter_copy, adapter_dir, tmp_path, cli, registry_env
):
    for i in range(6):
        model = make_adapter_copy(adapter_dir, tmp_path / f"m{i}", str(i))
        cli("register", "--model", str(model), "--name", "mqa", "--version", f"2.0.{i}")
    procs = [
        _start(registry_env, "promote", f"mqa:2.0.{i}", "--env", "production") for i in range(6)
    ]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    history = json.loads(cli("show", "mqa@production", "--json").output)["history"]
    assert len(history) == 6
    # Each move starts where the one before it ended: no lost update.
    for before, after in zip(history, history[1:], strict=False):
        assert after["from_version"] == before["to_version"]


def test_a_process_killed_mid_register_leaves_no_partial_version(tmp_path, cli, registry_env):
    big = tmp_path / "big"
    big.mkdir()
    for i in range(24):
        (big / f"shard-{i:02}.bin").write_bytes(os.urandom(4 << 20))
    (big / "config.json").write_text("{}")
    proc = _start(
        registry_env, "register", "--model", str(big), "--name", "big", "--version", "1.0.0"
    )
    blobs = registry_env / "blobs"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if blobs.is_dir() and sum(1 for p in blobs.rglob("*") if p.is_file()) >= 2:
            break
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "register finished before it could be killed"
    stored = [p for p in blobs.rglob("*") if p.is_file()]
    assert 2 <= len(stored) < 25  # it was stopped part-way through the blobs
    assert "no model named 'big'" in cli("show", "big", expect=1).output
    assert json.loads(cli("list", "--json").output) == []
    cli("registry", "verify")
    # every blob under its final name is whole: its content hashes to its name
    from lfm.registry.manifest import sha256_file

    assert all(sha256_file(p) == p.name for p in stored)
    # Registering again completes, reusing what was stored; gc then finds nothing to remove
    # but the killed process's temp file.
    cli("register", "--model", str(big), "--name", "big", "--version", "1.0.0")
    removed = cli("registry", "gc", "--grace", "0").output
    assert "removed" in removed
    cli("pull", "big:1.0.0", "--to", str(tmp_path / "pulled"))
    assert (tmp_path / "pulled" / "shard-23.bin").read_bytes() == (
        big / "shard-23.bin"
    ).read_bytes()
    assert not any((registry_env / "tmp").iterdir())


def test_errors_from_a_real_process_are_one_line(adapter_dir, tmp_path, registry_env):
    cases = [
        ("register", "--model", str(adapter_dir), "--name", "a b", "--version", "1.0.0"),
        ("register", "--model", str(adapter_dir), "--name", "ok", "--version", "v1"),
        ("register", "--model", str(tmp_path / "nothing"), "--name", "ok", "--version", "1.0.0"),
        ("pull", "unknown:1.0.0"),
        ("promote", "unknown:1.0.0", "--env", "production"),
        ("rollback", "unknown"),
        ("show", "ok@Production"),
    ]
    for args in cases:
        done = subprocess.run([*LFM, *args], env=_env(registry_env), capture_output=True, text=True)
        assert done.returncode == 1, (args, done.stdout, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1, (args, done.stderr)
        assert "Traceback" not in done.stderr

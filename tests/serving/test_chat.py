"""`lfm chat` as a person uses it, through a pseudo-terminal, and `--prompt` from a script."""

from __future__ import annotations

import subprocess
import sys

import pytest

pexpect = pytest.importorskip("pexpect")


def _chat(models, *extra: str) -> list[str]:
    return [sys.executable, "-m", "lfm.cli", "chat", str(models.base),
            "--adapter", f"one={models.one}", "--adapter", f"two={models.two}",
            "--max-tokens", "8", "--temperature", "0", *extra]  # fmt: skip


def _once(models, prompt: str, use: str) -> str:
    done = subprocess.run(
        _chat(models, "--prompt", prompt, "--use", use), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.rstrip("\n")


def test_a_conversation_streams_switches_adapters_and_resets(models):
    first_one, first_two = _once(models, "hello", "one"), _once(models, "hello", "two")
    assert first_one != first_two  # two adapters, two answers
    command = _chat(models)
    child = pexpect.spawn(command[0], command[1:], encoding="utf-8", timeout=300)
    try:
        child.expect("talking to one")
        child.expect_exact("one> you: ")
        child.sendline("hello")
        child.expect_exact("one> you: ")
        assert first_one in child.before  # the same answer as --prompt gives
        child.sendline("/adapter")
        child.expect_exact("one *")
        child.sendline("/adapter two")
        child.expect_exact("(now talking to two)")
        child.sendline("/reset")
        child.expect_exact("(conversation forgotten)")
        child.expect_exact("two> you: ")
        child.sendline("hello")
        child.expect_exact("two> you: ")
        assert first_two in child.before  # a fresh conversation, with the other adapter
        child.sendline("/adapter nobody")
        child.expect_exact("no 'nobody'")
        child.sendeof()
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0


def test_a_bad_start_is_one_line(models):
    done = subprocess.run(
        [*_chat(models, "--use", "nobody", "--prompt", "hi")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 1 and "--use nobody: not one of" in done.stderr
    assert "Traceback" not in done.stderr

"""Bounded config loading (issue 17, class 5): a config path that is not a regular file, one too
large, a YAML alias bomb (also under an ignored `x-` key), a recursive alias and deep nesting are
each one clear error, found before the expensive step, never a hang or a memory blow-up.

The cases that would take the machine's memory if the bound regressed run in a subprocess with
its address space capped: a regression fails the test instead of the machine."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from lfm.compiler.bounds import MAX_CONFIG_BYTES
from lfm.compiler.diagnostics import CompileError
from lfm.compiler.load import load_config

ADDRESS_SPACE = 1 << 30  # 1 GiB: the interpreter, ruamel.yaml and the config, with room to spare

LAUGHS = """\
{top}:
  a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
  b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
  c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
  d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
  e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
  f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
  g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
  h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
  i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
"""
BOMB_UNDER_X = LAUGHS.format(top="x-laughs") + "model_config:\n  name: bomb\n"
BOMB_IN_CONFIG = "model_config:\n  name: bomb\n" + LAUGHS.format(top="  hyperparameters").replace(
    "\n  ", "\n    "
)
TOO_MANY = "more than 100000 keys and values here once YAML aliases are expanded"


def _load_capped(path: Path) -> subprocess.CompletedProcess[str]:
    """load_config(path) in a child whose address space is capped; prints the error."""
    code = (
        "import sys\n"
        "from lfm.compiler.load import load_config\n"
        "from lfm.compiler.diagnostics import CompileError\n"
        "try:\n"
        f"    load_config({str(path)!r})\n"
        "except CompileError as exc:\n"
        "    print(exc)\n"
        "    sys.exit(1)\n"
    )

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))

    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, preexec_fn=cap
    )


@contextmanager
def _no_hang(seconds: int = 10) -> Iterator[None]:
    """Fail, instead of waiting forever, when a read blocks (a FIFO with no writer)."""

    def stop(signum: int, frame: object) -> None:
        raise AssertionError(f"still blocked after {seconds}s")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _error(path: Path | str) -> str:
    with pytest.raises(CompileError) as info:
        load_config(path)
    assert len(info.value.diagnostics) == 1
    return str(info.value)


@pytest.mark.parametrize(
    ("text", "where"),
    [(BOMB_UNDER_X, "config.yaml:7:6"), (BOMB_IN_CONFIG, "config.yaml:9:8")],
    ids=["under-x-key", "in-model-config"],
)
def test_an_alias_bomb_is_one_error_in_little_memory(write_config, text, where):
    path = write_config(text)
    result = _load_capped(path.resolve())
    assert result.returncode == 1, result.stderr[-2000:]
    assert result.stdout.startswith(f"{path.resolve()}:{where.split(':', 1)[1]}: error: {TOO_MANY}")
    assert _error(path).startswith(f"{where}: error: {TOO_MANY}")


def test_an_alias_bomb_in_json_shape_is_refused_too(write_config):
    """A .json config is read by ruamel.yaml as well (for positions): its limits hold there."""
    path = write_config(
        '{"model_config": {"name": "x", "xs": [' + ",".join(["1"] * 100_001) + "]}}", "c.json"
    )
    assert TOO_MANY in _error(path)


def test_a_recursive_alias_is_one_error(write_config):
    path = write_config("x-loop: &loop [1, *loop]\nmodel_config: {name: x}\n")
    assert (
        _error(path)
        == "config.yaml:1:9: error: the anchor &loop is used inside itself, so it never ends"
    )


def test_aliases_used_as_intended_still_load_with_positions(write_config):
    path = write_config(
        "x-defaults: &defaults {r: 8, alpha: 16}\n"
        "model_config:\n"
        "  a: *defaults\n"
        "  b:\n"
        "    <<: *defaults\n"
        "  c:\n"
        "    <<: *defaults\n"
        "    r: 4\n"
    )
    loaded = load_config(path)
    assert loaded.data["model_config"] == {
        "a": {"r": 8, "alpha": 16},
        "b": {"r": 8, "alpha": 16},
        "c": {"r": 4, "alpha": 16},
    }
    assert loaded.source.values[("model_config", "c", "r")].line == 8


@pytest.mark.parametrize(
    ("text", "name", "where"),
    [
        ("model_config: " + "[" * 100_000, "c.yaml", "c.yaml:1:79"),
        ("".join(" " * i + "k:\n" for i in range(200)), "c.yaml", "c.yaml:65:66"),
        ('{"model_config": ' + "[" * 100_000 + "]" * 100_000 + "}", "c.json", "c.json:1:1"),
        ('{"model_config":\t' + "[" * 80 + "]" * 80 + "}", "c.json", "c.json:1:82"),
        ('\t{"model_config": ' + "[" * 500 + "]" * 500 + "}", "c.json", "c.json:1:1"),
    ],
    ids=[
        "yaml-flow",
        "yaml-block",
        "json-past-recursion-limit",
        "json",
        "json-that-yaml-cannot-read",
    ],
)
def test_deep_nesting_is_one_error(write_config, text, name, where):
    path = write_config(text, name)
    assert _error(path).startswith(f"{where}: error: nested more than 64 levels deep")


def test_an_oversized_config_is_refused_unread(write_config):
    path = write_config("# padding\n" * (MAX_CONFIG_BYTES // 10 + 1))
    assert (
        _error(path) == "error: config.yaml is 256.1 KiB, over the 256 KiB limit for a config file"
    )


def test_a_config_at_the_size_limit_still_loads(write_config):
    text = "model_config: {name: x}\n"
    path = write_config(text + "#" * (MAX_CONFIG_BYTES - len(text) - 1) + "\n")
    assert load_config(path).data == {"model_config": {"name": "x"}}


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
def test_a_device_is_refused_unread():
    result = _load_capped(Path("/dev/zero"))
    assert result.stdout == "error: /dev/zero is a character device, not a config file\n"


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    os.mkfifo("config.yaml")
    with _no_hang():
        message = _error("config.yaml")
    assert message == "error: config.yaml is a FIFO (named pipe), not a config file"


def test_a_directory_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.yaml").mkdir()
    assert _error("config.yaml") == "error: config.yaml is a directory, not a config file"


def test_the_cli_prints_one_line_for_a_fifo(tmp_path, monkeypatch):
    from click.testing import CliRunner
    from lfm.cli import lfm

    monkeypatch.chdir(tmp_path)
    os.mkfifo("config.yaml")
    try:
        runner = CliRunner(mix_stderr=False)  # click < 8.2
    except TypeError:
        runner = CliRunner()
    with _no_hang():
        result = runner.invoke(lfm, ["validate", "config.yaml"])
    assert result.exit_code == 1, result.exception
    assert (
        result.stderr == "error: config.yaml is a FIFO (named pipe), not a config file\n1 error\n"
    )


def test_json_positions_survive_the_bounded_loader(write_config):
    path = write_config(
        json.dumps({"model_config": {"name": "x", "n": [1, 2]}}, indent=2), "c.json"
    )
    assert load_config(path).source.values[("model_config", "n", 1)].line == 6

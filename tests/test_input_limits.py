"""runtime.inputs, the bounded read every user-named file goes through, and the lm-eval task
files lfm parses itself (issue 17, class 5): a device, a FIFO or a folder is refused before it
is read, a file over its limit unread; a task file's aliases and includes are walked once."""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from lfm.runtime.errors import RuntimeConfigError
from lfm.runtime.inputs import NotARegularFile, TooLarge, read_bounded, size_text


@contextmanager
def _no_hang(seconds: int = 10) -> Iterator[None]:
    def stop(signum: int, frame: object) -> None:
        raise AssertionError(f"still running after {seconds}s")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_a_file_up_to_the_limit_is_read_and_one_byte_more_is_not(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"x" * 1024)
    assert read_bounded(path, 1024, "a test file") == b"x" * 1024
    with pytest.raises(TooLarge, match=r"^1 KiB, over the 1023 bytes limit for a test file$"):
        read_bounded(path, 1023, "a test file")


@pytest.mark.parametrize(
    ("make", "kind"),
    [(os.mkfifo, "a FIFO (named pipe)"), (os.mkdir, "a directory")],
    ids=["fifo", "directory"],
)
def test_what_is_not_a_regular_file_is_refused_unread(tmp_path, make, kind):
    path = tmp_path / "f"
    make(path)
    with _no_hang(), pytest.raises(NotARegularFile, match=rf"^{re.escape(kind)}, not a test file$"):
        read_bounded(path, 1024, "a test file")


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
def test_a_device_is_refused_unread():
    with pytest.raises(NotARegularFile, match="^a character device, not a test file$"):
        read_bounded("/dev/zero", 1024, "a test file")


def test_sizes_round_up_so_one_byte_over_never_reads_as_the_limit():
    assert [size_text(n) for n in (812, 1024, 256 * 1024 + 1, 300 * 2**20)] == [
        "812 bytes",
        "1 KiB",
        "256.1 KiB",
        "300 MiB",
    ]


def test_a_task_file_alias_bomb_is_walked_once_per_node(tmp_path):
    """Each alias is its anchor's node: walking it per use is 9**12 nodes here."""
    from lfm.runtime.evaluation.benchmarks import _task_runs_code

    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 13)]
    (tmp_path / "t.yaml").write_text("\n".join(lines) + "\ntask: t\n")
    with _no_hang():
        assert not _task_runs_code(tmp_path / "t.yaml")


def test_task_files_that_include_each_other_in_layers_are_read_once_each(tmp_path):
    """Each layer includes both files of the next: read per path, that is 2**30 reads."""
    from lfm.runtime.evaluation.benchmarks import _task_runs_code

    layers = 30
    for layer in range(layers):
        for side in "ab":
            text = (
                f"include: {layer + 1}a.yaml\nx:\n  include: {layer + 1}b.yaml\n"
                if layer + 1 < layers
                else "task: t\n"
            )
            (tmp_path / f"{layer}{side}.yaml").write_text(text)
    with _no_hang():
        assert not _task_runs_code(tmp_path / "0a.yaml")


def test_a_task_file_that_is_a_fifo_is_one_error(tmp_path):
    from lfm.runtime.evaluation.benchmarks import _task_runs_code

    os.mkfifo(tmp_path / "t.yaml")
    with (
        _no_hang(),
        pytest.raises(RuntimeConfigError, match=r"is a FIFO \(named pipe\), not a task file"),
    ):
        _task_runs_code(tmp_path / "t.yaml")

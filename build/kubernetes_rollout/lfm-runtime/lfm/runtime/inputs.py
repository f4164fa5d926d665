"""Reading a file a user names, bounded: only a regular file, and never more than a limit.

A path can name a device (``/dev/zero`` never ends), a FIFO (a read waits for a writer that may
never come) or a file far larger than anything lfm expects there. Each is refused before it is
read, with a message that names the limit, so bad input costs a line, not the machine's memory.
"""

from __future__ import annotations

import math
import os
import stat
from typing import BinaryIO

MiB = 1024 * 1024
# Opening a FIFO for reading blocks until a writer appears; non-blocking, the open returns and
# fstat says what it is. The flag changes nothing for a regular file (absent on Windows).
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)


class InputRefused(ValueError):
    """A file refused before it is read; the message is a phrase to follow "NAME is": "a FIFO
    (named pipe), not a config file", "300.5 KiB, over the 256 KiB limit for a config file"."""


class NotARegularFile(InputRefused):
    pass


class TooLarge(InputRefused):
    pass


def read_bounded(path: str | os.PathLike[str], limit: int, what: str = "a file") -> bytes:
    """The bytes of ``path``, a regular file of at most ``limit`` bytes; ``what`` names it in
    the message, with its article ("a config file"). Raises :class:`InputRefused`, or
    ``OSError`` when the file cannot be opened."""
    with open_regular(path, what) as handle:
        _refuse_if_larger(os.fstat(handle.fileno()).st_size, limit, what)
        data = handle.read(limit + 1)  # the file may have grown since fstat
    _refuse_if_larger(len(data), limit, what)
    return data


def open_regular(path: str | os.PathLike[str], what: str = "a file") -> BinaryIO:
    """``path`` open for reading in binary, refused unless it is a regular file: for a reader
    that streams it (its size alone says nothing then)."""
    fd = os.open(path, _OPEN_FLAGS)
    try:
        _refuse_unless_regular(os.fstat(fd).st_mode, what)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def regular_file_size(path: str | os.PathLike[str], limit: int, what: str = "a file") -> int:
    """The size of ``path`` after the same checks, for a reader that hands the path to a library
    (a .docx to python-docx, a PDF to pypdf) instead of reading its bytes itself."""
    info = os.stat(path)
    _refuse_unless_regular(info.st_mode, what)
    _refuse_if_larger(info.st_size, limit, what)
    return info.st_size


def _refuse_unless_regular(mode: int, what: str) -> None:
    if not stat.S_ISREG(mode):
        raise NotARegularFile(f"{_kind(mode)}, not {what}")


def _refuse_if_larger(size: int, limit: int, what: str) -> None:
    if size > limit:
        raise TooLarge(f"{size_text(size)}, over the {size_text(limit)} limit for {what}")


def size_text(size: int) -> str:
    """``3.5 MiB``, ``1 MiB``, ``812 bytes``: sizes in messages, as a person reads them. Rounded
    up, so a file one byte over a limit never reads as the limit itself."""
    for unit, scale in (("GiB", 1024 * MiB), ("MiB", MiB), ("KiB", 1024)):
        if size >= scale:
            return f"{math.ceil(size * 10 / scale) / 10:.1f}".removesuffix(".0") + f" {unit}"
    return f"{size} bytes"


def _kind(mode: int) -> str:
    kinds = {
        stat.S_ISDIR: "a directory",
        stat.S_ISFIFO: "a FIFO (named pipe)",
        stat.S_ISCHR: "a character device",
        stat.S_ISBLK: "a block device",
        stat.S_ISSOCK: "a socket",
    }
    return next((name for test, name in kinds.items() if test(mode)), "a special file")

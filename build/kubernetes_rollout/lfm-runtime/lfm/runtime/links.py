"""Symbolic links in a folder lfm reads: never followed out of it.

A model, adapter or document folder is input, and input may come from anyone: a link in it can
name ``/etc/passwd``, a private key or a whole folder elsewhere, and whatever lfm follows it
to, it would store in the registry, copy into an image or turn into training records. So every
place that lists a folder a user gives (``lfm register``, ``lfm deploy``, ``lfm dataset
create``, a training run's data folder) lists it with :func:`folder_files`, whose rule is:

- a link to a regular file inside the folder is that file: its content is read, copied or
  stored under the link's name, never the link itself;
- every other link is skipped, with the reason: one that leads out of the folder (however many
  links it goes through), one that leads nowhere (dangling, or a loop), one to a folder (even
  inside: a folder is never entered through a link) and one to something that is not a file
  (a device, a pipe);
- the folder itself may be a link (``--model latest``): the user named it; what matters is
  what lies in it.

A file named on its own (a dataset source) is judged as an entry of the folder holding it:
:func:`link_problem` with that folder. The caller tells the user what was skipped,
:func:`warn` on stderr, and the dataset report lists them with the other skipped documents.
(A hard link cannot be told from the file itself; the kernel's ``protected_hardlinks`` keeps
anyone from making one to a file they could not read.)
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePath

# Whether to leave out an entry (and, for a folder, all it holds) without a word: a relative
# path, and whether it is a folder (a link never is).
LeaveOut = Callable[[PurePath, bool], bool]


@dataclass(frozen=True)
class SkippedLink:
    path: Path  # the link, as found under the folder given
    reason: str  # where it points and why that is not followed

    def warning(self) -> str:
        return f"warning: skipped {self.path}: {self.reason}"


@dataclass
class FolderFiles:
    files: list[Path] = field(default_factory=list)  # in path order, links to a file included
    skipped: list[SkippedLink] = field(default_factory=list)


def folder_files(folder: Path, leave_out: LeaveOut = lambda rel, is_dir: False) -> FolderFiles:
    """The regular files under ``folder`` and the links to files inside it; every other link
    is in ``skipped``. An unreadable folder below it raises OSError, as reading it would."""
    found = FolderFiles()
    _collect(folder, folder, Path(os.path.realpath(folder)), leave_out, found)
    return found


def _collect(
    root: Path, folder: Path, real_root: Path, leave_out: LeaveOut, found: FolderFiles
) -> None:
    with os.scandir(folder) as scan:
        entries = sorted(scan, key=lambda entry: entry.name)
    for entry in entries:
        path = Path(entry.path)
        is_dir = entry.is_dir(follow_symlinks=False)
        if leave_out(path.relative_to(root), is_dir):
            continue
        if entry.is_symlink():
            problem = _problem(path, root, real_root)
            if problem:
                found.skipped.append(SkippedLink(path, problem))
            else:
                found.files.append(path)
        elif is_dir:
            _collect(root, path, real_root, leave_out, found)
        elif entry.is_file(follow_symlinks=False):
            found.files.append(path)
        # anything else (a socket, a pipe, a device) holds no file content to take


def link_problem(path: Path, folder: Path) -> str | None:
    """Why the link ``path`` is not followed, judged against ``folder``; None when it is a link
    to a regular file inside ``folder``, or not a link at all."""
    if not path.is_symlink():
        return None
    return _problem(path, folder, Path(os.path.realpath(folder)))


def _problem(link: Path, folder: Path, real_folder: Path) -> str | None:
    target = os.readlink(link)
    real = Path(os.path.realpath(link))  # every link on the way followed; never raises
    if not real.is_relative_to(real_folder):
        return f"symbolic link to {target} (outside {folder}): not followed"
    try:
        mode = real.stat().st_mode
    except OSError:
        return f"symbolic link to {target}, which does not exist"
    if stat.S_ISDIR(mode):
        return f"symbolic link to the folder {target}: folders are not entered through links"
    if not stat.S_ISREG(mode):
        return f"symbolic link to {target}, which is not a regular file"
    return None


def warn(skipped: Iterable[SkippedLink]) -> None:
    """One line on stderr per skipped link: the user learns what was left out, and why."""
    for link in skipped:
        print(link.warning(), file=sys.stderr, flush=True)

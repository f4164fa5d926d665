"""Symbolic links a hostile (or careless) author leaves in a folder that lfm is asked to read.

Shared by the registry, deploy and dataset tests: each plants them in the folder it hands to
lfm, then proves that nothing of what they point to comes out the other side.
"""

from __future__ import annotations

from pathlib import Path

SECRET = "SECRET-7f3a9c"  # stands for what /etc/passwd or a private key would hold
SECRET_TEXT = "".join(
    f"The root password of production server {n} is {SECRET}. Operators rotate it every "
    f"quarter and keep it in the vault under the name {SECRET}-{n}.\n\n"
    for n in range(12)
)
LINKS = ("passwd.txt", "private", "gone.txt")  # to a file outside, a folder outside, nothing


def plant_links(folder: Path, outside: Path) -> None:
    """Links in ``folder`` to a file and a folder in ``outside`` (both holding the secret) and
    one to nothing at all."""
    (outside / "private").mkdir(parents=True)
    (outside / "passwd").write_text(SECRET_TEXT, encoding="utf-8")
    (outside / "private" / "notes.txt").write_text(SECRET_TEXT, encoding="utf-8")
    (folder / "passwd.txt").symlink_to(outside / "passwd")
    (folder / "private").symlink_to(outside / "private", target_is_directory=True)
    (folder / "gone.txt").symlink_to(folder / "never-written.txt")


def holds_secret(folder: Path) -> list[str]:
    """What under ``folder`` is a link or holds the secret (links are not followed)."""
    found = []
    for path in sorted(folder.rglob("*")):
        if path.is_symlink():
            found.append(f"{path.relative_to(folder)} (a link)")
        elif path.is_file() and SECRET.encode() in path.read_bytes():
            found.append(str(path.relative_to(folder)))
    return found

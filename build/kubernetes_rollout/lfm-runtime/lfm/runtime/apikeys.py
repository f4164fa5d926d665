"""API keys with roles, shared by `lfm serve` and `lfm ui`: one variable and one file format,
so one keys file opens both.

Roles, each allowed what the ones before it are: ``read``, ``operate``, ``admin`` (what each
may do is the server's or the UI's to say). Keys come from the environment
(``LFM_SERVE_API_KEYS="read:KEY,operate:KEY2"``) or a file (``--api-keys FILE``: one
``ROLE KEY`` per line, ``#`` comments). A key is never logged or echoed: a caller is known by
the first characters of the key's SHA-256. Without any key every caller is ``LOCAL`` (admin),
which is why the commands serve only this machine then.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass
from pathlib import Path

ROLES = ("read", "operate", "admin")
ENV = "LFM_SERVE_API_KEYS"
MIN_KEY_LENGTH = 16  # a guessable key is no key
MAX_FILE_BYTES = 1 << 20


class KeysError(ValueError):
    """A keys file or variable that cannot be used; the message says where and why."""


@dataclass(frozen=True)
class Caller:
    role: str
    who: str  # "key:1a2b3c4d" (the key's hash, never the key), or "local"

    def may(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


LOCAL = Caller("admin", "local")


class Keys:
    def __init__(self, entries: list[tuple[str, str]]) -> None:
        self._entries = [(role, key.encode()) for role, key in entries]

    @property
    def enabled(self) -> bool:
        return bool(self._entries)

    @classmethod
    def load(cls, file: Path | None = None) -> Keys:
        entries = parse_env(os.environ.get(ENV, ""))
        if file is not None:
            entries += parse_file(file)
        return cls(entries)

    def holder(self, key: str) -> Caller | None:
        """Who holds ``key``; None for an empty or unknown one (every key compared, in
        constant time each)."""
        offered = key.strip().encode()
        found = None
        for role, known in self._entries:
            if hmac.compare_digest(offered, known):
                found = role
        if found is None or not offered:
            return None
        return Caller(found, f"key:{hashlib.sha256(offered).hexdigest()[:8]}")


def parse_env(text: str) -> list[tuple[str, str]]:
    entries: list[tuple[str, str]] = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        role, sep, key = item.partition(":")
        entries.append(_entry(role.strip(), key.strip(), f"{ENV} entry {len(entries) + 1}", sep))
    return entries


def parse_file(path: Path) -> list[tuple[str, str]]:
    try:
        if not path.is_file():
            raise KeysError(f"--api-keys {path}: not a file")
        if path.stat().st_size > MAX_FILE_BYTES:
            raise KeysError(f"--api-keys {path}: larger than {MAX_FILE_BYTES} bytes")
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise KeysError(f"--api-keys {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise KeysError(f"--api-keys {path}: not UTF-8 text") from None
    entries = []
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if line and not line.startswith("#"):
            role, sep, key = line.partition(" ")
            entries.append(_entry(role, key.strip(), f"{path}:{number}", sep))
    return entries


def _entry(role: str, key: str, where: str, separator: str) -> tuple[str, str]:
    # The messages name the place, never the key.
    if not separator or role not in ROLES:
        raise KeysError(f"{where}: write ROLE KEY with ROLE one of {', '.join(ROLES)}")
    if len(key) < MIN_KEY_LENGTH:
        raise KeysError(f"{where}: a key needs at least {MIN_KEY_LENGTH} characters")
    return role, key

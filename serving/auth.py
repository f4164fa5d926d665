"""API keys with roles: who may generate, who may change what is served.

Roles, each allowed what the ones before it are: ``read`` (generate, list models, metrics),
``operate`` (load, unload and swap adapters), ``admin``. Keys come from the environment
(``LFM_SERVE_API_KEYS="read:KEY,operate:KEY2"``) or a file (``--api-keys FILE``: one
``ROLE KEY`` per line, ``#`` comments). A key is never logged or echoed: a caller is known by
the first characters of the key's SHA-256. Without any key the server serves this machine
only (the CLI refuses another address), and every caller is admin.
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


class KeyError_(ValueError):  # noqa: N801 (not the builtin KeyError)
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
        entries = _parse_env(os.environ.get(ENV, ""))
        if file is not None:
            entries += _parse_file(file)
        return cls(entries)

    def caller(self, authorization: str | None) -> Caller | None:
        """Who sends ``Authorization: Bearer KEY``; None for a missing or unknown key."""
        if not self.enabled:
            return LOCAL
        scheme, _, key = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not key:
            return None
        offered = key.strip().encode()
        found = None
        for role, known in self._entries:  # every key compared, in constant time each
            if hmac.compare_digest(offered, known):
                found = role
        if found is None:
            return None
        return Caller(found, f"key:{hashlib.sha256(offered).hexdigest()[:8]}")


def _parse_env(text: str) -> list[tuple[str, str]]:
    entries: list[tuple[str, str]] = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        role, sep, key = item.partition(":")
        entries.append(_entry(role.strip(), key.strip(), f"{ENV} entry {len(entries) + 1}", sep))
    return entries


def _parse_file(path: Path) -> list[tuple[str, str]]:
    try:
        if not path.is_file():
            raise KeyError_(f"--api-keys {path}: not a file")
        if path.stat().st_size > MAX_FILE_BYTES:
            raise KeyError_(f"--api-keys {path}: larger than {MAX_FILE_BYTES} bytes")
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise KeyError_(f"--api-keys {path}: {exc.strerror or exc}") from None
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
        raise KeyError_(f"{where}: write ROLE KEY with ROLE one of {', '.join(ROLES)}")
    if len(key) < MIN_KEY_LENGTH:
        raise KeyError_(f"{where}: a key needs at least {MIN_KEY_LENGTH} characters")
    return role, key

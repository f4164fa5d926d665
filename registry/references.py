"""Names, semantic versions and references (``name``, ``name:version``, ``name@env``)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import semver

from .errors import RegistryError

# Names travel into paths, URLs and MLflow model names: keep them to a portable alphabet.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_ENV = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
LATEST = "latest"


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name or ""):  # fullmatch: "$" alone lets a final newline through
        raise RegistryError(
            f"bad model name {name!r}: use letters, digits, '.', '_' and '-' (start with a letter "
            "or digit, at most 128 characters)"
        )
    return name


def check_env(env: str) -> str:
    if not _ENV.fullmatch(env or ""):
        raise RegistryError(
            f"bad environment name {env!r}: use lowercase letters, digits, '_' and '-' "
            "(e.g. staging, production)"
        )
    return env


def parse_version(text: str) -> semver.Version:
    """A strict semantic version (MAJOR.MINOR.PATCH[-prerelease][+build])."""
    try:
        return semver.Version.parse(text)
    except (ValueError, TypeError):
        hint = "; drop the leading 'v'" if text[:1] in ("v", "V") else ""
        raise RegistryError(
            f"bad version {text!r}: not a semantic version MAJOR.MINOR.PATCH (e.g. 1.2.0 or "
            f"1.3.0-rc.1){hint}"
        ) from None


def check_version(text: str) -> str:
    return str(parse_version(text))


def sort_versions(versions: Iterable[str]) -> list[str]:
    """Oldest first, in semantic-version order (1.10.0 after 1.9.0; 2.0.0-rc.1 before 2.0.0)."""
    return sorted(versions, key=semver.Version.parse)


def latest_of(versions: Iterable[str]) -> str | None:
    """The highest release; the highest pre-release only when there is no release at all."""
    ordered = sort_versions(versions)
    releases = [v for v in ordered if not semver.Version.parse(v).prerelease]
    if releases:
        return releases[-1]
    return ordered[-1] if ordered else None


@dataclass(frozen=True)
class Reference:
    """What a user names: a version (``1.2.0`` or ``latest``) or an environment, never both."""

    name: str
    version: str | None = None
    env: str | None = None

    def __str__(self) -> str:
        if self.env:
            return f"{self.name}@{self.env}"
        return f"{self.name}:{self.version or LATEST}"


def parse_reference(text: str) -> Reference:
    """``name`` (latest), ``name:latest``, ``name:1.2.0`` or ``name@production``."""
    text = (text or "").strip()
    if "@" in text and ":" in text:
        raise RegistryError(
            f"bad reference {text!r}: give a version (name:1.2.0) or an environment "
            "(name@production), not both"
        )
    if "@" in text:
        name, env = text.split("@", 1)
        return Reference(check_name(name), env=check_env(env))
    if ":" in text:
        name, version = text.split(":", 1)
        if version == LATEST:
            return Reference(check_name(name))
        return Reference(check_name(name), version=check_version(version))
    return Reference(check_name(text))

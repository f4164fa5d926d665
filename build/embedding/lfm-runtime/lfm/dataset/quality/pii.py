"""Find and redact personal data: emails, phone numbers, credit cards, IPs, US SSNs, IBANs.

Patterns are deliberately specific (a card number must pass the Luhn check, an IPv4 octet is at
most 255) so ordinary numbers in documents are left alone.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable

_EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")
_CARD = re.compile(r"\b(?:\d[ -]?){12,18}\d\b")
_SSN = re.compile(r"\b(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}\b")
_IPV4 = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b")
_IPV6 = re.compile(r"(?<![\w:])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![\w:])")
_PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)[ .-]?|\d{2,4}[ .-])\d{3,4}[ .-]\d{3,4}(?!\w)"
)
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){3,7}(?: ?[A-Z0-9]{1,3})?\b")


def _luhn(text: str) -> bool:
    digits = [int(c) for c in text if c.isdigit()]
    if not 13 <= len(digits) <= 19:
        return False
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _ipv6(text: str) -> bool:
    """A host's IPv6 address, not code: `::`, `::=` (ASN.1), `::add` (Rust, C++) and `a::b`
    parse as addresses too, so an address needs three groups of hex digits and a host's kind
    (not unspecified, loopback, link-local or multicast)."""
    try:
        address = ipaddress.IPv6Address(text)
    except ValueError:
        return False
    if sum(bool(group) for group in text.split(":")) < 3:
        return False
    return not (
        address.is_unspecified
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
    )


# (kind, pattern, extra check); order matters: cards before phones, which they resemble.
DETECTORS: tuple[tuple[str, re.Pattern[str], Callable[[str], bool] | None], ...] = (
    ("EMAIL", _EMAIL, None),
    ("CREDIT_CARD", _CARD, _luhn),
    ("SSN", _SSN, None),
    ("IBAN", _IBAN, None),
    ("IP_ADDRESS", _IPV4, _ip),
    ("IP_ADDRESS", _IPV6, _ipv6),
    ("PHONE", _PHONE, None),
)


def _phone(match: re.Match[str]) -> bool:
    """7 to 15 digits, not part of a longer run of digit groups (an account or card number)."""
    digits = sum(c.isdigit() for c in match.group(0))
    before = match.string[: match.start()].rstrip(" -.")[-1:]
    after = match.string[match.end() :].lstrip(" -.")[:1]
    return 7 <= digits <= 15 and not before.isdigit() and not after.isdigit()


def find_pii(text: str) -> dict[str, int]:
    """How many of each kind of personal data ``text`` holds."""
    return redact(text)[1]


def redact(text: str) -> tuple[str, dict[str, int]]:
    """``text`` with each finding replaced by ``[KIND]``, and the counts per kind."""
    found: dict[str, int] = {}
    for kind, pattern, check in DETECTORS:

        def replace(match: re.Match[str], kind: str = kind, check=check) -> str:  # type: ignore[no-untyped-def]
            if check is not None and not check(match.group(0)):
                return match.group(0)
            if kind == "PHONE" and not _phone(match):
                return match.group(0)
            found[kind] = found.get(kind, 0) + 1
            return f"[{kind}]"

        text = pattern.sub(replace, text)
    return text, found

"""What a config may send where: the rules for the URLs and key variables it names.

A config is untrusted input, yet some of its settings send data out: the Q&A generator posts
documents (and an API key read from the environment) to ``base_url``, alerts go to a webhook,
metrics to an MLflow server. Three rules keep a config from turning that into a leak:

- The key a request carries comes from an environment variable whose name ends in ``_API_KEY``:
  a config cannot name ``AWS_SECRET_ACCESS_KEY`` or ``GITHUB_TOKEN`` and have it posted away.
- Plain ``http://`` goes only to this machine (loopback), unless the person running lfm allows a
  host from outside the config: ``LFM_ALLOW_HTTP`` (comma-separated hosts, or ``*``) or a
  command's ``--allow-http HOST``.
- A credential is never copied from a URL into a file lfm writes: ``user:password@`` is taken out
  of URLs (MLflow reads them from MLFLOW_TRACKING_USERNAME/PASSWORD instead), and a webhook URL,
  whose path is itself the secret for Slack, Discord or Teams, is read at run time from
  ``LFM_ALERT_WEBHOOK_URL``.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Iterable
from urllib.parse import SplitResult, urlsplit

ALLOW_HTTP_ENV = "LFM_ALLOW_HTTP"
WEBHOOK_ENV = "LFM_ALERT_WEBHOOK_URL"
KEY_NAME = re.compile(r"[A-Z][A-Z0-9_]*_API_KEY")


def key_name_problem(name: str, setting: str) -> str | None:
    """Why the environment variable ``name`` may not be sent as an API key; None when it may."""
    if KEY_NAME.fullmatch(name):
        return None
    return (
        f"{setting}: {name!r} is not an API key variable: lfm sends only variables named "
        "*_API_KEY (upper case), so a config cannot post another secret of this environment "
        f"to an endpoint; export the key under such a name, e.g. MY_ENDPOINT_API_KEY=${name}"
    )


def _split(url: str) -> SplitResult | None:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (parsed lazily: a bad port or IPv6 literal raises here)
    except ValueError:  # e.g. "http://[oops": not a URL anything could send to
        return None
    return parts


def host(url: str) -> str:
    parts = _split(url)
    return (parts.hostname or "").lower() if parts else ""


def loopback(url: str) -> bool:
    return loopback_host(host(url))


def loopback_host(name: str) -> bool:
    """``name`` (a host name or address) is this machine."""
    name = name.lower().strip("[]")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def allowed_http_hosts() -> list[str]:
    value = os.environ.get(ALLOW_HTTP_ENV, "")
    return [entry.strip().lower() for entry in value.split(",") if entry.strip()]


def allow_http(hosts: Iterable[str]) -> None:
    """Allow plain HTTP to these hosts for the rest of this process (and its children)."""
    os.environ[ALLOW_HTTP_ENV] = ",".join(dict.fromkeys([*allowed_http_hosts(), *hosts]))


def plain_http_problem(url: str, what: str) -> str | None:
    """Why ``url`` may not be used unencrypted (``what`` says what would travel in clear)."""
    parts = _split(url)
    if parts is None or parts.scheme.lower() != "http" or loopback(url):
        return None
    name = host(url)
    allowed = allowed_http_hosts()
    if "*" in allowed or name in allowed:
        return None
    return (
        f"{url_without_credentials(url)} is plain http to another machine: "
        f"{what} would cross the network unencrypted; use https, or allow this host with "
        f"{ALLOW_HTTP_ENV}={name} (or --allow-http {name})"
    )


# The authority's user information, up to its last "@": found even in a URL too broken to parse.
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@")


def has_credentials(url: str) -> bool:
    return _USERINFO.match(url) is not None


def url_without_credentials(url: str) -> str:
    """``url`` with any ``user:password@`` removed (the rest as written)."""
    return _USERINFO.sub(r"\1", url, count=1)

"""Browser sessions: a key typed once into the login form, remembered server-side.

The cookie holds only a random session id (HttpOnly, so no script reads it; SameSite=Strict,
so no other site's page sends it). The session holds the caller (role and key hash, never the
key) and a CSRF token that every form posts back. Sessions live in memory: restarting `lfm ui`
logs everyone out, which is the safe direction.

A visitor without a cookie gets a session that is not stored (and no cookie) until a page
needs one: one that shows a form to post (the login form, a confirmation) or a login. So
requests that carry no cookie (a scraper, /health, a flood) store nothing, and the anonymous
sessions that are stored have their own bound: the oldest of them go first, never a logged-in
one.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field

from .auth import Caller

COOKIE = "lfm_ui_session"
LIFETIME_SECONDS = 12 * 3600
MAX_ANONYMOUS = 2_000  # stored sessions of visitors who did not log in (a form's CSRF token)
MAX_LOGGED_IN = 10_000  # beyond this a new login ends the oldest login


@dataclass
class Session:
    id: str
    caller: Caller | None
    logged_in: bool = False  # from a key typed into the login form
    stored: bool = False  # kept by Sessions (and so in a cookie)
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    expires: float = field(default_factory=lambda: time.time() + LIFETIME_SECONDS)
    flash: list[tuple[str, str]] = field(default_factory=list)  # (level, message) for next page

    def check_csrf(self, offered: str | None) -> bool:
        return self.stored and bool(offered) and secrets.compare_digest(offered or "", self.csrf)


class Sessions:
    def __init__(
        self,
        default_caller: Caller | None,
        max_anonymous: int = MAX_ANONYMOUS,
        max_logged_in: int = MAX_LOGGED_IN,
    ) -> None:
        self._default = default_caller  # LOCAL when there are no keys, else nobody
        self._limits = {False: max_anonymous, True: max_logged_in}
        self._by_id: dict[str, Session] = {}
        self._lock = threading.Lock()

    def find(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        with self._lock:
            session = self._by_id.get(session_id)
            if session is not None and session.expires < time.time():
                del self._by_id[session_id]
                return None
            return session

    def visitor(self) -> Session:
        """A session for a request without one: not stored until :meth:`keep`."""
        return Session(secrets.token_urlsafe(32), self._default)

    def keep(self, session: Session) -> None:
        """Store an anonymous visitor's session (a page is about to show it a form)."""
        if not session.stored:
            self._store(session)

    def login(self, caller: Caller) -> Session:
        """A fresh, stored session (and id) at every login, so that an id planted before the
        login is worth nothing after it."""
        session = Session(secrets.token_urlsafe(32), caller, logged_in=True)
        self._store(session)
        return session

    def drop(self, session: Session) -> None:
        with self._lock:
            self._by_id.pop(session.id, None)
        session.stored = False

    def _store(self, session: Session) -> None:
        with self._lock:
            same_kind = [s for s in self._by_id.values() if s.logged_in == session.logged_in]
            if len(same_kind) >= self._limits[session.logged_in]:
                # only a session of the same kind goes: anonymous visits never end a login
                oldest = min(same_kind, key=lambda s: s.expires)
                del self._by_id[oldest.id]
            session.stored = True
            self._by_id[session.id] = session

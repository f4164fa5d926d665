"""Who may generate and who may change what is served: lfm.runtime.apikeys' keys and roles,
asked with an ``Authorization: Bearer KEY`` header.

``read`` generates, lists models and reads metrics; ``operate`` also loads, unloads and swaps
adapters; ``admin`` may do everything. Without any key the server serves this machine only
(the CLI refuses another address), and every caller is admin.
"""

from __future__ import annotations

from lfm.runtime import apikeys
from lfm.runtime.apikeys import LOCAL, ROLES, Caller, KeysError

KeyError_ = KeysError  # the name this module's callers know

__all__ = ["LOCAL", "ROLES", "Caller", "KeyError_", "Keys", "KeysError"]


class Keys(apikeys.Keys):
    def caller(self, authorization: str | None) -> Caller | None:
        """Who sends ``Authorization: Bearer KEY``; None for a missing or unknown key."""
        if not self.enabled:
            return LOCAL
        scheme, _, key = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not key:
            return None
        return self.holder(key)

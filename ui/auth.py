"""The UI's keys and roles are `lfm serve`'s (lfm.runtime.apikeys): the same variable and
file format, so one keys file opens both. ``read`` shows every page, ``operate`` also promotes
and rolls back, ``admin`` may do everything. Without any key the UI serves this machine only
and every visitor is admin, as `lfm serve` does.
"""

from __future__ import annotations

from lfm.runtime import apikeys
from lfm.runtime.apikeys import LOCAL, ROLES, Caller, KeysError

__all__ = ["LOCAL", "ROLES", "Caller", "Keys", "KeysError"]


class Keys(apikeys.Keys):
    def caller(self, key: str) -> Caller | None:
        """Who holds ``key`` (typed into the login form); None for an unknown one."""
        return self.holder(key)

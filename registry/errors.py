"""The one exception type the registry raises for a user's mistake or a damaged store."""


class RegistryError(Exception):
    """A problem the user can act on, in one line that names the thing at fault and the fix.

    The CLI prints it as ``error: ...`` with exit status 1, never a traceback.
    """

"""The exception types the registry raises for a user's mistake or a damaged store."""


class RegistryError(Exception):
    """A problem the user can act on, in one line that names the thing at fault and the fix.

    The CLI prints it as ``error: ...`` with exit status 1, never a traceback.
    """


class MovedMeanwhile(RegistryError):
    """An environment no longer points where the caller saw it point (someone else moved it,
    or a form was sent twice): nothing was changed."""

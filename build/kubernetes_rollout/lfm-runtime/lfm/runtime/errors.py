"""The one exception type a user's mistake raises at training time."""


class RuntimeConfigError(Exception):
    """A problem the user can fix in their config, data or environment.

    The message is a single line naming the field or file at fault and the fix, so
    a bundle's ``train.py`` can print it instead of a traceback.
    """


def first_line(exc: BaseException) -> str:
    """An exception's message cut to its first line (its type name when it has none)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__

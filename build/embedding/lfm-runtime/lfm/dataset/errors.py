"""The one exception a user's mistake raises while building a dataset."""


class DatasetError(Exception):
    """A problem the user can fix (a missing source, a bad option): a one-line message."""

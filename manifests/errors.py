"""The one exception type for problems a user can cause and fix (CLI exit code 2)."""


class UsageError(ValueError):
    """Bad input or usage: the message is one line saying what was wrong and how to fix it."""

"""The one exception type for problems a user can cause and fix (CLI exit code 2)."""


class UsageError(ValueError):
    """Bad input or usage: the message is one line saying what was wrong and how to fix it."""


def first_line(e: BaseException, default: str | None = None) -> str:
    """The first line of an exception's message (for one-line errors), or `default` / its type name."""
    text = str(e).strip()
    return text.splitlines()[0] if text else (type(e).__name__ if default is None else default)

"""What the three CLIs share: user errors become one line on stderr and exit code 2."""
from __future__ import annotations

import json

import click

from .errors import UsageError


class Group(click.Group):
    """A click group that turns UsageError (and ValueError from argument checks) into exit 2."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except UsageError as e:
            err = click.ClickException(str(e).splitlines()[0] if str(e) else "bad input")
            err.exit_code = 2
            raise err from None


def parse_kv(pairs: tuple[str, ...], option: str = "--param") -> dict:
    """`key=value` strings -> dict; values parsed as JSON where possible (numbers, bools)."""
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise UsageError(f"{option} {pair!r} is not key=value")
        key, raw = pair.split("=", 1)
        try:
            out[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            out[key.strip()] = raw
    return out

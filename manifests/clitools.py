"""What the three CLIs share: user errors become one line on stderr and exit code 2."""
from __future__ import annotations

import json
import logging
import math

import click

from .errors import UsageError, first_line


class FiniteRange(click.FloatRange):
    """click.FloatRange that also refuses nan (which every range comparison lets through)."""

    def convert(self, value, param, ctx):
        rv = super().convert(value, param, ctx)
        if not math.isfinite(rv):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return rv


class _EchoHandler(logging.Handler):
    """Library warnings (skipped files, fallbacks) as `warning: ...` lines on stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        click.echo(f"{record.levelname.lower()}: {record.getMessage()}", err=True)


class Group(click.Group):
    """A click group that turns UsageError into one line + exit 2 and shows library warnings."""

    def invoke(self, ctx: click.Context):
        log = logging.getLogger("hardspoof")
        handler = _EchoHandler(logging.WARNING)
        log.addHandler(handler)
        try:
            return super().invoke(ctx)
        except UsageError as e:
            err = click.ClickException(first_line(e, "bad input"))
            err.exit_code = 2
            raise err from None
        finally:
            log.removeHandler(handler)


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


def parse_grid(pairs: tuple[str, ...]) -> tuple[tuple[str, tuple], ...]:
    """`--grid key=v1,v2` -> ((key, (v1, v2)), ...), values parsed as --param values are."""
    out = []
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        values = [v for v in raw.split(",") if v.strip()]
        if not sep or not key.strip() or not values:
            raise UsageError(f"--grid {pair!r} is not key=v1,v2,...")
        out.append((key.strip(), tuple(parse_kv((f"x={v.strip()}",), "--grid")["x"] for v in values)))
    return tuple(out)

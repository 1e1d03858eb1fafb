"""Find the `reconstruct` / `detector` command lines inside job specs and check them with the CLI's own parser."""
from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Iterator

import click

_CLI = re.compile(r"(?<![\w./-])(?:reconstruct\s+(?:run|list|models|fit|bench)|detector\s+(?:train|eval|score|inspect))\b")
_TORCHRUN = re.compile(r"(?<![\w./-])(?:torchrun|python3?\s+-m\s+torch\.distributed\.run)\s")
_SHVAR = re.compile(r"\$\{(\w+(?:\[@\])?)(?::-((?:[^{}]|\{[^{}]*\})*))?\}|\$(\w+)")


def joined_lines(text: str) -> list[str]:
    """Shell logical lines: comment lines dropped, `\\` continuations joined."""
    code = "\n".join(x for x in text.splitlines() if not x.lstrip().startswith("#"))
    return re.sub(r"\\\n\s*", " ", code).splitlines()


def comments(text: str) -> str:
    """The text of the comment lines (`# ` removed), e.g. commands documented in a YAML header."""
    return "\n".join(re.sub(r"^\s*#\s?", "", x) for x in text.splitlines() if x.lstrip().startswith("#"))


def yaml_strings(node) -> Iterator[str]:
    """Every string value of a parsed YAML document."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for v in node.values():
            yield from yaml_strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from yaml_strings(v)


def _cut(line: str, start: int) -> str:
    """From `start` to the end of that simple command: an unquoted ; & | ) or the end of the line."""
    out, quote = [], None
    for ch in line[start:]:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in ";&|)":
            break
        out.append(ch)
    text = "".join(out).strip()
    if quote and text.endswith(quote):              # closed a quote opened before `start`
        text = text[:-1].rstrip()
    return text


def cli_lines(text: str) -> list[str]:
    """The `reconstruct ...` / `detector ...` command lines in `text` (one per logical line)."""
    found = []
    for line in joined_lines(text):
        for m in _CLI.finditer(line):
            cmd = _cut(line, m.start())
            if "`" not in cmd:                         # `reconstruct run` quoted in prose is no command
                found.append(cmd)
    return found


def torchrun_lines(text: str) -> list[str]:
    found = []
    for line in joined_lines(text):
        m = _TORCHRUN.search(line)
        if m and "`" not in line:
            found.append(_cut(line, m.start()))
    return found


def shell_knobs(text: str) -> dict[str, str]:
    """`NAME=${NAME:-default}` (optionally `export`ed) knob lines of a script -> {NAME: default}."""
    knobs = {}
    for m in re.finditer(r"^\s*(?:export\s+)?(\w+)=\$\{(\w+):-((?:[^{}]|\{[^{}]*\})*)\}", text, re.M):
        if m.group(1) == m.group(2):
            knobs[m.group(1)] = m.group(3)
    return knobs


def expand_shell(text: str, values: dict[str, str]) -> str:
    """Expand $VAR / ${VAR} / ${VAR:-default} / ${ARR[@]} with `values`; unknown without default -> KeyError."""
    text = re.sub(r'"\$\{(\w+\[@\])\}"', lambda m: values[m.group(1)], text)   # "${ARR[@]}": words

    def sub(m: re.Match) -> str:
        name = m.group(1) or m.group(3)
        if name in values:
            return expand_shell(values[name], values)
        if m.group(2) is not None:
            return expand_shell(m.group(2), values)
        raise KeyError(f"no value for ${name} in {text!r}")
    return _SHVAR.sub(sub, text)


def split(line: str) -> list[str]:
    return shlex.split(line)


def resolve(group: click.Group, argv: list[str]) -> click.Context:
    """Parse argv (after the program name) through nested click groups, as the CLI would, without running it."""
    ctx = group.make_context(group.name or "cli", list(argv))
    cmd: click.Command = group
    while isinstance(cmd, click.Group):
        args = [*ctx._protected_args, *ctx.args]
        name, sub, rest = cmd.resolve_command(ctx, args)
        ctx = sub.make_context(name, rest, parent=ctx)
        cmd = sub
    return ctx


def substitute_paths(argv: list[str], mapping: dict[str, str], prefix: str, tmp: Path) -> list[str]:
    """Replace option values: `mapping` by option name, then any value starting with `prefix` by a path under tmp."""
    out = list(argv)
    for i, a in enumerate(out):
        if i and out[i - 1] in mapping:
            out[i] = mapping[out[i - 1]]
        elif a.startswith(prefix):
            out[i] = str(tmp / a[len(prefix):].strip("/").replace("/", "_"))
    return out


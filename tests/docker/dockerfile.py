"""A small Dockerfile parser: logical instructions, ARG/ENV scopes, variable expansion.

Enough of the Dockerfile reference to check our own files without a Docker engine: parser
directives, comments, `\\` line continuations, exec (JSON) and shell forms, ARG defaults,
ENV key=value pairs, `$VAR` / `${VAR}` / `${VAR:-default}` expansion.
"""
from __future__ import annotations

import dataclasses
import json
import re
import shlex
from pathlib import Path

INSTRUCTIONS = {"ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK", "LABEL",
                "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR"}
_SHELL_EXPANDED = {"RUN", "CMD", "ENTRYPOINT", "HEALTHCHECK", "SHELL", "ONBUILD"}
_VAR = re.compile(r"\$(?:\{(\w+)(?::([-+])([^}]*))?\}|(\w+))")


class DockerfileError(ValueError):
    pass


@dataclasses.dataclass
class Instruction:
    keyword: str                  # upper case, e.g. RUN
    value: str                    # the arguments, continuations joined with a space
    line: int                     # 1-based line of the keyword
    env: dict[str, str]           # ARG/ENV values in scope when the instruction runs

    def expanded(self) -> str:
        """The arguments after Docker's own substitution (RUN/CMD/ENTRYPOINT are left to the shell)."""
        return self.value if self.keyword in _SHELL_EXPANDED else expand(self.value, self.env)

    def exec_form(self) -> list[str] | None:
        """The JSON array of an exec-form instruction, or None for the shell form."""
        if not self.value.lstrip().startswith("["):
            return None
        try:
            form = json.loads(self.value)
        except json.JSONDecodeError as e:
            raise DockerfileError(f"line {self.line}: {self.keyword} is not valid JSON: {e}") from None
        if not (isinstance(form, list) and all(isinstance(x, str) for x in form)):
            raise DockerfileError(f"line {self.line}: {self.keyword} must be a JSON array of strings")
        return form


def expand(text: str, env: dict[str, str]) -> str:
    """Docker's variable substitution ($VAR, ${VAR}, ${VAR:-default}, ${VAR:+alt}); unset = empty."""
    def sub(m: re.Match) -> str:
        name = m.group(1) or m.group(4)
        value = env.get(name, "")
        if m.group(2) == "-":
            return value or m.group(3)
        if m.group(2) == "+":
            return m.group(3) if value else ""
        return value
    return _VAR.sub(sub, text)


def logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, instruction text): comments dropped, continuations joined."""
    out: list[tuple[int, str]] = []
    buf: list[str] = []
    start = 0
    header = True
    for n, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if header and re.match(r"#\s*\w+\s*=", stripped):     # parser directive (# syntax=...)
            continue
        if stripped.startswith("#") or (not stripped and not buf):
            header = header and stripped.startswith("#")
            continue                                          # comments may sit inside continuations
        header = False
        if not buf:
            start = n
        if stripped.endswith("\\"):
            buf.append(stripped[:-1].strip())
            continue
        buf.append(stripped)
        out.append((start, " ".join(x for x in buf if x)))
        buf = []
    if buf:
        raise DockerfileError(f"line {start}: continuation runs past the end of the file")
    return out


def _env_pairs(inst_line: int, value: str, env: dict[str, str]) -> dict[str, str]:
    parts = shlex.split(value)
    if parts and "=" not in parts[0]:                         # legacy `ENV key value`
        return {parts[0]: expand(" ".join(parts[1:]), env)}
    pairs = {}
    for p in parts:
        key, eq, val = p.partition("=")
        if not eq or not re.fullmatch(r"\w+", key):
            raise DockerfileError(f"line {inst_line}: bad ENV pair {p!r}")
        pairs[key] = expand(val, {**env, **pairs})
    return pairs


def parse(path: str | Path, build_args: dict[str, str] | None = None) -> list[Instruction]:
    """Instructions of a Dockerfile with the ARG/ENV scope each one sees (build_args override ARG defaults)."""
    build_args = build_args or {}
    global_args: dict[str, str] = {}                          # ARGs before the first FROM
    env: dict[str, str] | None = None                         # None until the first FROM
    out = []
    for line, text in logical_lines(Path(path).read_text()):
        keyword, _, value = text.partition(" ")
        keyword = keyword.upper()
        if keyword not in INSTRUCTIONS:
            raise DockerfileError(f"{path}:{line}: unknown instruction {keyword!r}")
        if env is None and keyword not in ("ARG", "FROM"):
            raise DockerfileError(f"{path}:{line}: {keyword} before FROM")
        scope = dict(global_args if env is None or keyword == "FROM" else env)   # FROM sees global ARGs only
        out.append(Instruction(keyword, value.strip(), line, scope))
        if keyword == "ARG":
            name, eq, default = value.strip().partition("=")
            if not re.fullmatch(r"\w+", name):
                raise DockerfileError(f"{path}:{line}: bad ARG {value!r}")
            if name in build_args:
                val = build_args[name]
            elif eq:
                val = expand(shlex.split(default)[0], scope) if default.strip() else ""
            else:                                             # re-declared global ARG keeps its value
                val = global_args.get(name, "") if env is not None else ""
            (global_args if env is None else env)[name] = val
        elif keyword == "FROM":
            env = {}
        elif keyword == "ENV":
            env.update(_env_pairs(line, value, env))
    if env is None:
        raise DockerfileError(f"{path}: no FROM")
    return out

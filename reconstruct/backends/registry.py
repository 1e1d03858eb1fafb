"""The back-end registry: a plain dict filled by `@register`, with helpful lookup errors."""
from __future__ import annotations

import difflib

from manifests.errors import UsageError

from .base import Backend

BACKENDS: dict[str, type[Backend]] = {}


def register(cls: type[Backend]) -> type[Backend]:
    """Class decorator: make a back-end available under `cls.name`."""
    if cls.name in BACKENDS and BACKENDS[cls.name] is not cls:
        raise RuntimeError(f"back-end name {cls.name!r} registered twice")
    BACKENDS[cls.name] = cls
    return cls


def available(method: str | None = None) -> list[str]:
    """Registered back-end names, optionally only those of one paradigm."""
    return sorted(n for n, c in BACKENDS.items() if method is None or c.method == method)


def get(name: str) -> type[Backend]:
    """The back-end class called `name`; an unknown name lists the choices and the closest one."""
    if name in BACKENDS:
        return BACKENDS[name]
    close = difflib.get_close_matches(name, BACKENDS, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise UsageError(f"unknown model {name!r}; choose one of: {', '.join(available())}.{hint}")

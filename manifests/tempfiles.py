"""Temp files of atomic local writes: short names that say who wrote them, and a sweep of the
ones a killed run left behind.

A temp file lives beside its destination (so the final rename is atomic) under a name of fixed,
short length, `.hs-HOST-PID-RANDOM.tmp`, whatever the destination's name: a destination name of
up to 255 bytes (the usual NAME_MAX) still gets a valid temp name. HOST (8 hex digits of a hash of
the host name) and PID say which process wrote it, so a later run can tell a dead writer's file
(sweep it) from a live one's (leave it).
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import socket
import time
import uuid
from pathlib import Path

log = logging.getLogger("hardspoof.tempfiles")

_OURS = re.compile(r"^\.hs-(?P<host>[0-9a-f]{8})-(?P<pid>\d+)-[0-9a-f]{8}\.tmp$")
_OLD = re.compile(r"^\..+\.[0-9a-f]{32}\.tmp$")  # `.{name}.{uuid hex}.tmp`, the naming before this module
STALE_AFTER_S = 3600.0  # a temp file of another host (or of the old naming) this old belongs to a dead writer


def _host() -> str:
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def temp_path(dest: Path) -> Path:
    """A fresh temp name in `dest`'s folder (at most 40 bytes, whatever `dest` is called)."""
    return dest.parent / f".hs-{_host()}-{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


def is_stale(path: Path, now: float | None = None, stale_after_s: float = STALE_AFTER_S) -> bool:
    """True for a temp file whose writer is gone: written on this host by a process that no longer
    exists, or (another host, or the old naming) last modified more than `stale_after_s` seconds ago."""
    m = _OURS.match(path.name)
    if m is None and not _OLD.match(path.name):
        return False
    if m is not None and m.group("host") == _host():
        return not _alive(int(m.group("pid")))
    try:
        age = (time.time() if now is None else now) - path.stat().st_mtime
    except OSError:
        return False
    return age > stale_after_s


def sweep(folder: str | os.PathLike, stale_after_s: float = STALE_AFTER_S) -> int:
    """Delete the stale temp files (see `is_stale`) under a local folder, recursively; returns how many.
    Symlinked folders are not followed. A missing folder is nothing to sweep."""
    removed = 0
    for top, _, files in os.walk(folder):
        for f in files:
            p = Path(top) / f
            if f.startswith(".") and f.endswith(".tmp") and is_stale(p, stale_after_s=stale_after_s):
                try:
                    p.unlink()
                    removed += 1
                except FileNotFoundError:
                    pass
    if removed:
        log.warning("removed %d temp file(s) left by an earlier, killed run under %s", removed, folder)
    return removed

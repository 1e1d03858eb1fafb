"""Temp files of atomic local writes: short names that say who wrote them, and a sweep of the
ones a killed run left behind (with a run's plan folder, OUT/.plan-HOST-PID-RUN/, and its write
probe, OUT/.write-probe-HOST-PID-RANDOM, which a kill leaves too).

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
import shutil
import socket
import time
import uuid
from pathlib import Path

log = logging.getLogger("hardspoof.tempfiles")

_OURS = re.compile(r"^\.hs-(?P<host>[0-9a-f]{8})-(?P<pid>\d+)-[0-9a-f]{8}\.tmp$")
_OLD = re.compile(r"^\..+\.[0-9a-f]{32}\.tmp$")  # `.{name}.{uuid hex}.tmp`, the naming before this module
_PROBE = re.compile(r"^\.write-probe-(?:(?P<host>[0-9a-f]{8})-(?P<pid>\d+)-)?[0-9a-f]{8,32}$")  # old: no HOST-PID
_PLAN = re.compile(r"^\.plan-(?:(?P<host>[0-9a-f]{8})-(?P<pid>\d+)-)?\d{8}T\d{6}Z-[0-9a-f]{8}$")
STALE_AFTER_S = 3600.0  # a temp file of another host (or of the old naming) this old belongs to a dead writer
PLAN_STALE_AFTER_S = 7 * 86400.0  # a plan folder lives as long as its run: one of another host only after a week


def _host() -> str:
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def owner() -> str:
    """HOST-PID of this process, for names of files and folders that a sweep must tell from a live run's."""
    return f"{_host()}-{os.getpid()}"


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


def _dead(m: re.Match | None, path: Path, now: float | None, stale_after_s: float) -> bool:
    """Whether the writer a name names (groups host and pid of `m`; None or empty in the old namings) is gone:
    on this host, its process no longer exists; otherwise `path` was last modified `stale_after_s` ago."""
    if m is not None and m.group("host") == _host():
        return not _alive(int(m.group("pid")))
    try:
        age = (time.time() if now is None else now) - path.stat().st_mtime
    except OSError:
        return False
    return age > stale_after_s


def is_stale(path: Path, now: float | None = None, stale_after_s: float = STALE_AFTER_S) -> bool:
    """True for a temp file or write probe whose writer is gone: written on this host by a process that no
    longer exists, or (another host, or the old naming) last modified more than `stale_after_s` seconds ago."""
    m = _OURS.match(path.name) or _PROBE.match(path.name)
    if m is None and not _OLD.match(path.name):
        return False
    return _dead(m, path, now, stale_after_s)


def is_stale_plan(path: Path, now: float | None = None, stale_after_s: float = PLAN_STALE_AFTER_S) -> bool:
    """True for a run's plan folder whose run is gone (see `_dead`; another host's after `stale_after_s`)."""
    m = _PLAN.match(path.name)
    return m is not None and _dead(m, path, now, stale_after_s)


def sweep(folder: str | os.PathLike, stale_after_s: float = STALE_AFTER_S) -> int:
    """Delete what killed runs left under a local folder: stale temp files and write probes (see `is_stale`),
    recursively, and stale plan folders directly in it (see `is_stale_plan`); returns how many. Symlinked
    folders are not followed. A missing folder is nothing to sweep."""
    removed = {"temp file(s)": 0, "write probe(s)": 0, "plan folder(s)": 0}
    for depth, (top, dirs, files) in enumerate(os.walk(folder)):
        if depth == 0:
            for d in [d for d in dirs if is_stale_plan(Path(top) / d)]:
                shutil.rmtree(Path(top) / d, ignore_errors=True)
                dirs.remove(d)
                removed["plan folder(s)"] += 1
        for f in files:
            p = Path(top) / f
            if f.startswith(".") and is_stale(p, stale_after_s=stale_after_s):
                try:
                    p.unlink()
                    removed["write probe(s)" if f.startswith(".write-probe-") else "temp file(s)"] += 1
                except FileNotFoundError:
                    pass
    if any(removed.values()):
        what = ", ".join(f"{n} {k}" for k, n in removed.items() if n)
        log.warning("removed %s left by an earlier, killed run under %s", what, folder)
    return sum(removed.values())

"""An output file's place, checked before any work: its folder, and one writer at a time.

`out_folder` creates at most the last level of an output file's folder: a typo such as
`/nonexistent/dir/s.tsv` is refused instead of creating folders anywhere. `output_lock` lets one
process write an output file at a time: two runs into one file would each replace the other's rows.
The lock is `flock` on `.NAME.lock` beside the file, so the kernel releases it when its process ends,
`kill -9` included; a lock file left behind by a killed run holds no lock and is taken by the next
writer, and a finished writer removes it. Outputs in an object store (s3://, gs://) have no such lock.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path
from typing import Iterator

from . import storage
from .errors import UsageError

_NAME_MAX = 255


def out_folder(out: str | os.PathLike, option: str = "--out") -> None:
    """Make sure the folder of the local output file `out` exists, creating only its last level.

    Raises UsageError (one line, naming `option`) when `out` is a folder, when its folder's parent does not
    exist either, or when the folder cannot be created. An object-store URI is left to the store."""
    loc = os.fspath(out)
    if storage.is_uri(loc):
        return
    path = Path(storage.normalize(loc))
    if path.is_dir():
        raise UsageError(f"{option} {out} is a folder; give a file name")
    folder = path.parent
    if folder.is_dir():
        return
    if folder.exists():
        raise UsageError(f"{option} {out}: {folder} is not a folder")
    if not folder.parent.is_dir():
        raise UsageError(f"{option} {out}: neither {folder} nor {folder.parent} exists; only the last folder level "
                         f"is created (create {folder.parent} first, or check the path)")
    try:
        folder.mkdir()
    except OSError as e:
        raise UsageError(f"{option} {out}: cannot create the folder {folder} ({e.strerror or e})") from None


def lock_path(out: str | os.PathLike) -> Path:
    """The lock file of the local output `out`: `.NAME.lock` beside it (a hash when NAME is too long)."""
    path = Path(storage.normalize(out))
    name = f".{path.name}.lock"
    if len(os.fsencode(name)) > _NAME_MAX:
        name = f".{hashlib.sha256(os.fsencode(path.name)).hexdigest()[:32]}.lock"
    return path.with_name(name)


def _holder(fd: int) -> str:
    text = os.pread(fd, 64, 0).decode("ascii", errors="replace").strip()
    return f"pid {text}" if text.isdigit() else "another process"


@contextlib.contextmanager
def output_lock(out: str | os.PathLike, option: str = "--out") -> Iterator[None]:
    """Hold the lock of the output file `out` (local; a URI is not locked) while the block runs.

    Raises UsageError at once, naming the file and the holder's pid, when another process holds it; and
    when the lock file cannot be created (the output's folder is not writable)."""
    if storage.is_uri(os.fspath(out)):
        yield
        return
    import fcntl

    lock = lock_path(out)
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise UsageError(f"{option} {out}: its folder {lock.parent} is not writable ({e.strerror or e})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise UsageError(f"{option} {out} is being written by {holder} (lock {lock.name}); wait for it to "
                             f"finish, or choose another {option}") from None
        try:  # the holder before us may have removed the file between our open and flock: lock the new one
            current = os.stat(lock).st_ino
        except FileNotFoundError:
            current = None
        if current == os.fstat(fd).st_ino:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(lock)  # while still holding it, so no one locks a file that is about to vanish
        os.close(fd)

"""Where files live: a local path, or an object-store URI (s3://, gs://, ...) through pyarrow.fs.

Every function takes a *location*: a local path (str or PathLike) or a URI, and returns
locations as str. Local paths use the OS directly; URIs go through the pyarrow filesystem of
their scheme, which takes credentials, region and endpoint from the usual places (AWS_* /
GOOGLE_* environment, config files, instance roles). S3-compatible stores (MinIO, Ceph, R2)
are reached with AWS_ENDPOINT_URL; a GCS emulator with STORAGE_EMULATOR_HOST. Writes never
expose half a file: local ones go through temp + fsync + rename; object-store ones upload a
buffer that is already complete, and the store publishes an object only when its upload
(one request, or a multipart/resumable upload) is committed at the end.
"""
from __future__ import annotations

import datetime
import functools
import hashlib
import io
import os
import posixpath
import re
import uuid
from pathlib import Path
from typing import BinaryIO, Callable, Iterable

from . import tempfiles
from .errors import UsageError, first_line

_URI = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://(.*)$")
FILE, DIR = "file", "dir"


def is_uri(loc: str | os.PathLike) -> bool:
    """True for `scheme://...` (except file://, which is a local path)."""
    m = _URI.match(os.fspath(loc))
    return bool(m) and m.group(1).lower() != "file"


def _parts(uri: str) -> tuple[str, str]:
    """'s3://bucket/a/b' -> ('s3', 'bucket/a/b'), normalized."""
    scheme, rest = _URI.match(uri).groups()
    if "?" in rest or "#" in rest:
        raise UsageError(f"{uri}: query strings are not supported in locations; set the endpoint and "
                         "credentials through the environment (e.g. AWS_ENDPOINT_URL)")
    rest = posixpath.normpath(rest.lstrip("/")) if rest.strip("/") else ""
    if rest in ("", ".") or rest.startswith(".."):
        raise UsageError(f"{uri}: a URI needs a bucket, as in {scheme}://BUCKET/path")
    return scheme.lower(), rest


def normalize(loc: str | os.PathLike) -> str:
    """Absolute, normalized local path (~ expanded), or a normalized URI."""
    s = os.fspath(loc)
    if is_uri(s):
        scheme, rest = _parts(s)
        return f"{scheme}://{rest}"
    if s.lower().startswith("file://"):
        s = s[len("file://"):]
    return os.path.abspath(os.path.expanduser(s))


@functools.lru_cache(maxsize=None)
def _filesystem(scheme: str, bucket: str):
    import pyarrow as pa
    from pyarrow import fs as pafs

    try:
        emulator = os.environ.get("STORAGE_EMULATOR_HOST")
        if scheme in ("gs", "gcs") and emulator:  # the convention of Google's own clients and emulators
            http, _, host = emulator.rpartition("://")
            return pafs.GcsFileSystem(endpoint_override=host, scheme=http or "http", anonymous=True,
                                      retry_time_limit=datetime.timedelta(seconds=20))
        return pafs.FileSystem.from_uri(f"{scheme}://{bucket}")[0]
    except (pa.ArrowException, OSError, ValueError) as e:
        raise UsageError(f"cannot open {scheme}://{bucket}: {first_line(e)}") from None


def filesystem(loc: str | os.PathLike):
    """(pyarrow FileSystem, path inside it) of a location."""
    from pyarrow import fs as pafs

    s = normalize(loc)
    if not is_uri(s):
        return pafs.LocalFileSystem(), s
    scheme, rest = _parts(s)
    return _filesystem(scheme, rest.split("/", 1)[0]), rest


def _root(loc: str) -> tuple[str, str, str]:
    """(scheme, bucket, key) of a URI; ('', '', path) of a local path."""
    if not is_uri(loc):
        return "", "", loc
    scheme, rest = _parts(loc)
    bucket, _, key = rest.partition("/")
    return scheme, bucket, "/" + key


def join(base: str | os.PathLike, *parts: str) -> str:
    """`base`/`parts`, normalized; an absolute part (path or URI) replaces what precedes it."""
    s = os.fspath(base)
    for p in parts:
        if isabs(p) or not is_uri(s):
            s = p if isabs(p) else os.path.join(s, p)
            continue
        scheme, bucket, key = _root(s)  # '..' stops at the bucket, as it stops at '/' on a disk
        s = f"{scheme}://{bucket}{posixpath.normpath(posixpath.join(key, p))}"
    return normalize(s) if is_uri(s) else os.path.normpath(s)


def isabs(loc: str | os.PathLike) -> bool:
    return is_uri(loc) or os.path.isabs(os.fspath(loc))


def parent(loc: str | os.PathLike) -> str:
    s = os.fspath(loc)
    if is_uri(s):
        scheme, rest = _parts(s)
        return f"{scheme}://{posixpath.dirname(rest) or rest}"
    return os.path.dirname(s)


def name(loc: str | os.PathLike) -> str:
    return posixpath.basename(os.fspath(loc).rstrip("/"))


def suffix(loc: str | os.PathLike) -> str:
    """Lower-case extension with the dot ('' for none)."""
    return posixpath.splitext(name(loc))[1].lower()


def relative(loc: str, root: str) -> str:
    """`loc` relative to the folder `root` when both live on one filesystem (bucket), else `loc`."""
    (s1, b1, k1), (s2, b2, k2) = _root(loc), _root(root)
    if (s1, b1) != (s2, b2):
        return loc
    return posixpath.relpath(k1, k2) if s1 else os.path.relpath(k1, k2)


def real(loc: str) -> str:
    """A local path with every symlink resolved (what is really opened); a URI unchanged."""
    return loc if is_uri(loc) else os.path.realpath(loc)


def is_within(loc: str, root: str) -> bool:
    """True when `loc` is `root` or under it, by name (see `real` to compare what is really opened)."""
    (s1, b1, k1), (s2, b2, k2) = _root(loc), _root(root)
    if (s1, b1) != (s2, b2):
        return False
    common = posixpath.commonpath if s1 else os.path.commonpath
    return common([k1, k2]) == k2


def common_parent(locs: Iterable[str]) -> str:
    """The deepest folder holding every location (all on one filesystem)."""
    folders = sorted({parent(loc) for loc in locs})
    roots = {_root(f)[:2] for f in folders}
    if len(roots) != 1:
        raise UsageError(f"corpus clips span {len(roots)} filesystems/buckets; keep a corpus in one place")
    scheme, bucket = roots.pop()
    keys = [_root(f)[2] for f in folders]
    if not scheme:
        return os.path.commonpath(keys)
    return f"{scheme}://{bucket}{posixpath.commonpath(keys).rstrip('/')}" if keys else ""


def kind(loc: str | os.PathLike) -> str | None:
    """'file', 'dir', or None when nothing is there."""
    s = os.fspath(loc)
    if not is_uri(s):
        p = Path(s)
        return FILE if p.is_file() else DIR if p.is_dir() else None
    from pyarrow import fs as pafs

    fs, path = filesystem(s)
    t = fs.get_file_info(path).type
    return FILE if t == pafs.FileType.File else DIR if t == pafs.FileType.Directory else None


def entries(folder: str | os.PathLike, recursive: bool = False) -> list[tuple[str, str]]:
    """(location, kind) of what is in `folder`; kind is 'file', 'dir', or 'other' (e.g. a broken link)."""
    s = os.fspath(folder)
    if not is_uri(s):
        p = Path(s)
        found = p.rglob("*") if recursive else p.iterdir()
        return [(str(e), FILE if e.is_file() else DIR if e.is_dir() else "other") for e in found]
    from pyarrow import fs as pafs

    fs, path = filesystem(s)
    scheme = _parts(normalize(s))[0]
    infos = fs.get_file_info(pafs.FileSelector(path, allow_not_found=True, recursive=recursive))
    kinds = {pafs.FileType.File: FILE, pafs.FileType.Directory: DIR}
    return [(f"{scheme}://{i.path}", kinds.get(i.type, "other")) for i in infos]


def read_bytes(loc: str | os.PathLike) -> bytes:
    s = os.fspath(loc)
    if not is_uri(s):
        return Path(s).read_bytes()
    fs, path = filesystem(s)
    with fs.open_input_stream(path) as fh:
        return fh.read()


def readable(loc: str | os.PathLike) -> str | io.BytesIO:
    """What soundfile/pyarrow can open: the local path itself, or the object's bytes in memory.

    Objects are fetched whole in one request: clips and manifest parts are small, and some
    stores and emulators handle ranged reads poorly."""
    s = os.fspath(loc)
    return s if not is_uri(s) else io.BytesIO(read_bytes(s))


def sha256(src: str | io.BytesIO, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a location's bytes (or of an in-memory buffer from `readable`)."""
    h = hashlib.sha256()
    if isinstance(src, io.BytesIO):
        h.update(src.getbuffer())
        return h.hexdigest()
    if is_uri(src):
        h.update(read_bytes(src))
        return h.hexdigest()
    with open(src, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def write_atomic(loc: str | os.PathLike, write: Callable[[BinaryIO], object]) -> str:
    """Call `write(binary file)` and publish the result under `loc` only once it is complete."""
    s = os.fspath(loc)
    if is_uri(s):
        buf = io.BytesIO()
        write(buf)
        fs, path = filesystem(s)
        with fs.open_output_stream(path) as fh:
            fh.write(buf.getbuffer())
        return normalize(s)
    dest = Path(s)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = tempfiles.temp_path(dest)  # short: a 255-byte `dest` name still has a valid temp name
    try:
        with open(tmp, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return str(dest)


def remove_tree(loc: str | os.PathLike) -> None:
    """Delete a folder and everything under it (nothing when it does not exist)."""
    s = os.fspath(loc)
    if is_uri(s):
        fs, path = filesystem(s)
        try:
            fs.delete_dir(path)
        except (FileNotFoundError, OSError):
            pass
        return
    import shutil

    shutil.rmtree(s, ignore_errors=True)


def remove(loc: str | os.PathLike) -> None:
    """Delete a file; nothing there is not an error."""
    s = os.fspath(loc)
    if not is_uri(s):
        Path(s).unlink(missing_ok=True)
        return
    fs, path = filesystem(s)
    try:
        fs.delete_file(path)
    except FileNotFoundError:
        pass


def check_writable(folder: str | os.PathLike) -> None:
    """Create `folder` (local) and write + delete a probe file in it; UsageError when that fails."""
    s = os.fspath(folder)
    probe = join(s, f".write-probe-{tempfiles.owner()}-{uuid.uuid4().hex[:8]}")  # owner: a kill's is swept
    if is_uri(s):
        scheme, bucket, _ = _root(normalize(s))
        try:
            found = kind(f"{scheme}://{bucket}")
        except OSError as e:
            raise UsageError(f"cannot reach bucket {scheme}://{bucket}: {first_line(e)}") from None
        if found != DIR:
            raise UsageError(f"bucket {scheme}://{bucket} does not exist or these credentials cannot see it")
    try:
        if not is_uri(s):
            Path(s).mkdir(parents=True, exist_ok=True)
        write_atomic(probe, lambda fh: fh.write(b""))
        remove(probe)
    except OSError as e:
        raise UsageError(f"output folder {s} is not writable ({e.strerror or first_line(e)})") from None

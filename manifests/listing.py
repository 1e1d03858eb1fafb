"""What a corpus holds, as one Arrow table, without opening any audio: the listing behind `import_corpus`
and `reconstruct run`.

Columns (`COLUMNS`): utt_id, path (absolute or a URI), label, attack, speaker, language, split (the
repeating ones dictionary-encoded), file_size and file_mtime_ns (the file's identity: a resume reuses a
clip's described row while both are unchanged; null when the entry cannot be read) and problem (why the
entry cannot be a clip, e.g. a named pipe or a missing file; null when it can). Rows become Arrow every
ROWS entries, so a million-clip corpus never exists as a million Python objects, then one contiguous table
(one dictionary per repeating column, one-byte indices where it has few values); later stages work on
CHUNK rows at a time. Checks over a whole column sort, or pass over an ascending column, rather than hash
every string.
"""
from __future__ import annotations

import ctypes
import functools
import os
import stat
from typing import Iterable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import storage

CHUNK = 16_384   # rows per step of the stages that follow the listing (the plan, a table's import)
ROWS = 8_192     # listing entries held as Python dicts before they become Arrow
STRINGS = ("utt_id", "path", "label", "attack", "speaker", "language", "split", "problem")
SCHEMA = pa.schema([*(pa.field(c, pa.string()) for c in STRINGS),
                    pa.field("file_size", pa.int64()), pa.field("file_mtime_ns", pa.int64())])
DICTIONARY = ("label", "attack", "speaker", "language", "split")


def identity(path: str) -> tuple[int | None, int | None, str | None]:
    """(size, mtime_ns, problem) of a local file, without opening it: problem says why it cannot be a
    clip (missing, a named pipe, a socket or device file)."""
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None, None, f"not a readable file: {path}"
    except OSError as e:
        return None, None, f"cannot read {storage.name(path)}: {e.strerror or e}"
    if stat.S_ISREG(st.st_mode):
        return st.st_size, st.st_mtime_ns, None
    what = "a named pipe (FIFO)" if stat.S_ISFIFO(st.st_mode) else \
        "a folder" if stat.S_ISDIR(st.st_mode) else "a socket or device file"
    return None, None, f"{storage.name(path)} is {what}, not a regular file; not read"


def remote_identities(paths: Iterable[str], known: dict | None = None) -> dict[str, tuple[int, int]]:
    """{uri: (size, mtime_ns)} for objects, from one recursive listing of their common folder. With `known`
    (a cache from earlier calls: {listed folder: its identities}), a folder already listed is not listed again."""
    from pyarrow import fs as pafs

    paths = list(paths)
    if not paths:
        return {}
    root = storage.common_parent(paths)
    for folder, ids in (known or {}).items():
        if storage.is_within(root, folder):
            return ids
    fs, key = storage.filesystem(root)
    scheme = root.split("://", 1)[0]
    infos = fs.get_file_info(pafs.FileSelector(key, allow_not_found=True, recursive=True))
    ids = {f"{scheme}://{i.path}": (i.size, i.mtime_ns or 0) for i in infos if i.type == pafs.FileType.File}
    if known is not None:
        known[root] = ids
    return ids


def table_from_rows(rows: Iterator[dict]) -> pa.Table:
    """Listing rows (dicts with the STRINGS keys; file_size/file_mtime_ns/problem filled here for local
    paths, by one listing for URIs) -> the listing table, ROWS rows at a time."""
    chunks, buf, listed = [], [], {}
    for r in rows:
        buf.append(r)
        if len(buf) == ROWS:
            chunks.append(encode(_chunk(buf, listed)))
            buf = []
    if buf or not chunks:
        chunks.append(encode(_chunk(buf, listed)))
    # one dictionary per column, then contiguous (Arrow's take from a chunked column joins its chunks first, on
    # every call), a column at a time, each column's chunks freed before the next is joined
    table = pa.concat_tables(chunks).unify_dictionaries()
    del chunks
    columns = {}
    for name in table.column_names:
        column = _narrow(table[name])
        table = table.drop_columns([name])
        if column.type == pa.string():
            pieces = column.chunks
            del column  # the list is the pieces' last holder: _joined frees each once copied
            columns[name] = _joined(pieces)
        else:
            columns[name] = column.combine_chunks()
    release_unused()
    return pa.table(columns)


def _joined(chunks: list[pa.Array]) -> pa.Array:
    """String chunks -> one array, each chunk freed once copied, so the join holds one chunk twice, not the
    column (combine_chunks keeps every chunk until the end: at a million paths +50 MB at the listing's peak).
    Chunks with nulls, or 2 GiB of text or more, are joined by Arrow."""
    bounds = [_offsets(c) for c in chunks]
    sizes = [int(o[-1] - o[0]) for o in bounds]
    if any(c.null_count for c in chunks) or sum(sizes) >= 2 ** 31:
        return pa.chunked_array(chunks, pa.string()).combine_chunks()
    n = sum(len(c) for c in chunks)
    data, offsets = np.empty(sum(sizes), np.uint8), np.zeros(n + 1, np.int32)
    row = at = 0
    for i, (o, size) in enumerate(zip(bounds, sizes)):
        c, chunks[i], bounds[i] = chunks[i], None, None
        offsets[row + 1:row + len(c) + 1] = o[1:] - o[0] + at
        data[at:at + size] = np.frombuffer(c.buffers()[2], np.uint8)[o[0]:o[-1]] if size else 0
        row, at = row + len(c), at + size
        del c, o
        if i % 16 == 15:
            release_unused()
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def _offsets(chunk: pa.Array) -> np.ndarray:
    """A string chunk's len + 1 offsets into its data buffer (a slice's among them)."""
    buf = chunk.buffers()[1]
    if buf is None:  # a zero-length array may have none
        return np.zeros(1, np.int32)
    return np.frombuffer(buf, np.int32)[chunk.offset:chunk.offset + len(chunk) + 1]


def _narrow(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """A dictionary column with the narrowest indices its dictionary allows (one byte a row for a few labels,
    two for up to 32,767 speakers) instead of Arrow's four."""
    if not pa.types.is_dictionary(column.type) or not column.num_chunks:
        return column
    n = len(column.chunk(0).dictionary)
    index = pa.int8() if n < 2 ** 7 else pa.int16() if n < 2 ** 15 else pa.int32()
    return column.cast(pa.dictionary(index, column.type.value_type))


def driver_allocator() -> None:
    """Send this process's Arrow allocations to the system allocator, unless ARROW_DEFAULT_MEMORY_POOL
    chooses one: a driver holds one listing made a chunk at a time for the whole run, and Arrow's bundled
    allocator (mimalloc) keeps the freed blocks between its chunks: ~100 MiB more at a million clips
    (docs/scale.md, Driver scale). Called by the driver commands."""
    if "ARROW_DEFAULT_MEMORY_POOL" not in os.environ:
        pa.set_memory_pool(pa.system_memory_pool())


def release_unused() -> None:
    """Hand the memory Arrow's allocator keeps after a stage's intermediate tables back to the OS (allocators
    keep freed blocks for reuse), and what glibc's malloc keeps of freed numpy arrays and Python objects
    (malloc_trim; nothing where there is no glibc)."""
    pa.default_memory_pool().release_unused()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.lru_cache(maxsize=1)
def _malloc_trim():
    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None


def _chunk(rows: list[dict], listed: dict) -> pa.Table:
    remote = remote_identities((r["path"] for r in rows if storage.is_uri(r["path"]) and "file_size" not in r), listed)
    for r in rows:
        if "file_size" in r:
            continue
        if storage.is_uri(r["path"]):
            size, mtime = remote.get(r["path"], (None, None))
            problem = None if size is not None else f"not a readable file: {r['path']}"
        else:
            size, mtime, problem = identity(r["path"])
        r.update(file_size=size, file_mtime_ns=mtime, problem=r.get("problem") or problem)
    return pa.Table.from_pylist(rows, schema=SCHEMA)


def encode(table: pa.Table) -> pa.Table:
    """Dictionary-encode the repeating string columns (a few bytes per row instead of the string)."""
    for name in DICTIONARY:
        i = table.schema.get_field_index(name)
        table = table.set_column(i, name, pc.dictionary_encode(table[name]))
    return table


def duplicates(values: pa.ChunkedArray | pa.Array) -> str | None:
    """The smallest value that occurs twice, or None. By sorting, not hashing: an ascending column (a folder's
    listing) costs nothing but a pass, any other a sort order (8 bytes a row), never a hash table of every
    string; both compare neighbours CHUNK rows at a time."""
    order = None if ascending(values) else pc.sort_indices(values)
    for start in range(0, len(values) - 1, CHUNK):
        run = values.slice(start, CHUNK + 1) if order is None else values.take(order.slice(start, CHUNK + 1))
        same = pc.equal(run.slice(0, len(run) - 1), run.slice(1))
        if pc.any(same).as_py():
            return run.slice(0, len(run) - 1).filter(pc.fill_null(same, False))[0].as_py()
    return None


def ascending(values: pa.ChunkedArray | pa.Array) -> bool:
    """Every value above the one before it (so no two equal), checked CHUNK rows at a time."""
    for start in range(0, len(values) - 1, CHUNK):
        run = values.slice(start, CHUNK + 1)
        if not pc.all(pc.less(run.slice(0, len(run) - 1), run.slice(1))).as_py():
            return False
    return True

"""What a corpus holds, as one Arrow table, without opening any audio: the listing behind `import_corpus`
and `reconstruct run`.

Columns (`COLUMNS`): utt_id, path (absolute or a URI), label, attack, speaker, language, split (the
repeating ones dictionary-encoded), file_size and file_mtime_ns (the file's identity: a resume reuses a
clip's described row while both are unchanged; null when the entry cannot be read) and problem (why the
entry cannot be a clip, e.g. a named pipe or a missing file; null when it can). Rows become Arrow every
ROWS entries, so a million-clip corpus never exists as a million Python objects; later stages work on
CHUNK rows at a time.
"""
from __future__ import annotations

import os
import stat
from typing import Iterable, Iterator

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
            chunks.append(_chunk(buf, listed))
            buf = []
    if buf or not chunks:
        chunks.append(_chunk(buf, listed))
    table = pa.concat_tables(chunks).combine_chunks()  # contiguous: the chunks' scattered blocks can go back
    del chunks
    table = encode(table)
    release_unused()
    return table


def release_unused() -> None:
    """Hand the memory Arrow's allocator keeps after a stage's intermediate tables back to the OS (it keeps
    freed blocks for reuse: after building a large listing that was ~3x the listing's own size)."""
    pa.default_memory_pool().release_unused()


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


def duplicates(utt_ids: pa.ChunkedArray | pa.Array) -> str | None:
    """The first utt_id that occurs twice, or None (Arrow hash counts, no Python set)."""
    counts = pc.value_counts(utt_ids)
    dup = counts.filter(pc.greater(counts.field("counts"), 1))
    return dup.field("values")[0].as_py() if len(dup) else None

"""Read, write and validate manifests: one Parquet file or a folder of Parquet parts.

A manifest lives on local disk or in an object store (`s3://`, `gs://`; see `storage`).
Paths are stored relative to the manifest's folder (the folder itself for a folder of
parts, the file's parent for a single file) when they share its filesystem, and returned
absolute (a path or a URI) by `read`.
"""
from __future__ import annotations

import os
from typing import Iterable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from . import listing, storage
from .errors import UsageError
from .schema import COLUMNS, REQUIRED, SCHEMA, SCHEMA_VERSION, VERSION_KEY

_TYPES = {name: typ for name, typ, _, _ in COLUMNS}
Location = str | os.PathLike


def base_dir(manifest: Location) -> str:
    """The folder that relative paths in `manifest` are relative to."""
    loc = storage.normalize(manifest)
    return loc if storage.kind(loc) == storage.DIR or not storage.suffix(loc) else storage.parent(loc)


def part_files(manifest: Location) -> list[str]:
    """The Parquet files of a manifest (itself, or the parts of a folder, sorted)."""
    loc = storage.normalize(manifest)
    found = storage.kind(loc)
    if found == storage.DIR:
        return sorted(f for f, k in storage.entries(loc) if k == storage.FILE
                      and storage.suffix(f) == ".parquet" and not storage.name(f).startswith("."))
    if found == storage.FILE:
        return [loc]
    raise UsageError(f"manifest not found: {manifest} (give a .parquet file or a folder of parts)")


def _sources(manifest: Location) -> list[tuple[str, object]]:
    """(name, what pyarrow opens) of each part: a local path, or an object fetched once."""
    return [(storage.name(f), storage.readable(f)) for f in part_files(manifest)]


def _schema_problems(schema: pa.Schema, where: str) -> list[str]:
    problems = []
    meta = schema.metadata or {}
    version = meta.get(VERSION_KEY, b"").decode() or None
    if version is None:
        problems.append(f"{where}: no schema version in metadata (expected {SCHEMA_VERSION})")
    elif version.split(".")[0] != SCHEMA_VERSION.split(".")[0]:
        problems.append(
            f"{where}: schema version {version} is not readable by this toolkit "
            f"(reads {SCHEMA_VERSION.split('.')[0]}.x; upgrade hardspoof)"
        )
    names = set(schema.names)
    missing = [c for c in REQUIRED if c not in names]
    if missing:
        problems.append(f"{where}: missing column(s) {', '.join(missing)}")
    for name in schema.names:
        want = _TYPES.get(name)
        got = schema.field(name).type
        if want is not None and not got.equals(want) and not pa.types.is_null(got):
            problems.append(f"{where}: column {name} has type {got}, expected {want}")
    return problems


def validate(manifest: Location, content: bool = True) -> int:
    """Check every part's schema (metadata), then, unless `content` is False, its rows (see `checks`:
    nulls in required columns, enumerations, ranges, utt_ids whose rows disagree); return the row count.

    Raises UsageError naming every missing or mistyped column and the version found, or every
    content problem with its count and an example.
    """
    sources = _sources(manifest)
    rows = _validated(manifest, sources)
    if content:
        from .checks import content_problems

        problems = content_problems(sources)
        if problems:
            raise UsageError(f"invalid manifest: {len(problems)} problem(s): " + "; ".join(problems))
    return rows


def _validated(manifest: Location, sources: list[tuple[str, object]]) -> int:
    if not sources:
        raise UsageError(f"manifest {manifest} has no Parquet parts")
    problems, rows = [], 0
    for name, src in sources:
        try:
            meta = pq.read_metadata(src)
        except (pa.ArrowInvalid, OSError) as e:
            problems.append(f"{name}: not a readable Parquet file ({e})")
            continue
        problems += _schema_problems(meta.schema.to_arrow_schema(), name)
        rows += meta.num_rows
    if problems:
        raise UsageError("invalid manifest: " + "; ".join(problems))
    return rows


def remote_path_refusal(path: str, manifest: Location, allow: bool = False) -> str | None:
    """Why the clip at `path`, listed in `manifest`, must not be read, or None.

    A remote path (s3://, gs://, http://...) in a local manifest is read only when the user opts in
    (`allow`, the --allow-remote-paths flag): a manifest from elsewhere must not make this machine
    contact hosts of its choosing with the user's credentials. A remote manifest's paths are read.
    """
    if allow or not storage.is_uri(path) or storage.is_uri(storage.normalize(manifest)):
        return None
    return (f"remote path {path} in the local manifest {storage.name(manifest)} is not read "
            "(pass --allow-remote-paths to read it)")


def _conform(table: pa.Table, columns: Sequence[str] | None = None) -> pa.Table:
    """Add absent nullable columns, order and cast columns to the v1 schema (or to its `columns`)."""
    fields = [f for f in SCHEMA if columns is None or f.name in columns]
    cols = [table[f.name].cast(f.type) if f.name in table.column_names else pa.nulls(table.num_rows, f.type)
            for f in fields]
    return pa.Table.from_arrays(cols, schema=pa.schema(fields, metadata=SCHEMA.metadata))


def _resolve_paths(table: pa.Table, root: str, block: int = 65536) -> pa.Table:
    """Relative paths joined to `root`, a block of rows at a time (a Python string per row of a million-row
    manifest at once cost some 150 MiB)."""
    column = table["path"]
    blocks = [pa.array([p if storage.isabs(p) else storage.join(root, p)
                        for p in column.slice(start, block).to_pylist()], pa.string())
              for start in range(0, len(column), block)]
    i = table.schema.get_field_index("path")
    return table.set_column(i, table.schema.field(i), pa.chunked_array(blocks, pa.string()))


def dedupe(table: pa.Table) -> pa.Table:
    """One row per utt_id: an `ok` row wins over `failed`, then the newest row wins (columnar; no Python
    object per row)."""
    if table.num_rows <= 1:
        return table
    keep = winners(table["utt_id"], table["status"], table["created_at"])
    return table if len(keep) == table.num_rows else table.take(keep)


def winners(utt_id: pa.ChunkedArray, status: pa.ChunkedArray, created_at: pa.ChunkedArray) -> pa.Array:
    """Indices (ascending) of the row that wins each utt_id: ok over failed, then the newest. When every
    utt_id is unique (a compacted manifest) that is every row, found without sorting."""
    if pc.count_distinct(utt_id, mode="all").as_py() == len(utt_id):
        return pa.array(np.arange(len(utt_id), dtype=np.int64))
    return winners_by(utt_id, pc.equal(status, "ok"), created_at)


def winners_by(key, ok, created_at) -> pa.Array:
    """`winners` by sorting, with any sortable key (e.g. integer row numbers) and the ok flags already
    computed; each argument an Arrow array or anything `pa.array` takes (created_at: timestamps or int64
    nanoseconds). For keys known to repeat: whether any does is the caller's check, made once, in the way
    that suits its keys (`winners`: a hash count; compaction: a sort; resume: a bitmap of keys seen)."""
    key, ok, created_at = (a if isinstance(a, (pa.Array, pa.ChunkedArray)) else pa.array(a) for a in (key, ok, created_at))
    n = len(key)
    keys = pa.table({"u": key, "ok": ok.cast(pa.int8()),
                     "t": pc.fill_null(created_at.cast(pa.int64()), 0), "i": pa.array(np.arange(n, dtype=np.int64))})
    keys = keys.sort_by([("u", "ascending"), ("ok", "descending"), ("t", "descending")])
    u = keys["u"].combine_chunks()
    first = pc.not_equal(u.slice(1), u.slice(0, n - 1)).fill_null(True)
    first = pa.concat_arrays([pa.array([True]), first])
    rows = keys["i"].combine_chunks().filter(first)
    return rows.take(pc.sort_indices(rows))


def read(manifest: Location, columns: Sequence[str] | None = None) -> pa.Table:
    """Read a manifest into one table in the v1 schema, paths absolute, one row per utt_id.

    With `columns`, only those (and the three that decide which row of a utt_id wins) are read from
    each part, so a resume reads what it needs of a large manifest, not every column. Safe while
    another run compacts the folder (see `over_moving_parts`)."""
    return over_moving_parts(_read_once, manifest, columns)


def _read_once(manifest: Location, columns: Sequence[str] | None) -> pa.Table:
    sources = _sources(manifest)  # listed and (for objects) fetched once, for the check and the read
    _validated(manifest, sources)
    root = base_dir(manifest)
    need = None if columns is None else list(dict.fromkeys([*columns, "utt_id", "status", "created_at"]))
    parts = [_conform(pq.read_table(src, columns=[c for c in need if c in _part_columns(src)] if need else None),
                      need) for _, src in sources]
    table = dedupe(pa.concat_tables(parts)) if parts else _conform(SCHEMA.empty_table(), need)
    if "path" in table.column_names:
        table = _resolve_paths(table, root)
    return table.select(list(columns)) if columns else table


def _part_columns(src) -> set[str]:
    return set(pq.read_schema(src).names)


def _relative_paths(rows: list[dict], root: str) -> list[dict]:
    out = []
    for r in rows:
        r = dict(r)
        p = r.get("path")
        if p and storage.isabs(p):
            r["path"] = storage.relative(p, root)
        out.append(r)
    return out


def to_table(rows: Iterable[dict], root: Location | None = None) -> pa.Table:
    """Rows (dicts with schema columns) -> a v1 table; absolute paths made relative to `root`."""
    rows = list(rows)
    if root is not None:
        rows = _relative_paths(rows, storage.normalize(root))
    return pa.Table.from_pylist(rows, schema=SCHEMA)


def write(rows: Iterable[dict] | pa.Table, dest: Location) -> str:
    """Write a manifest file atomically (absolute paths become relative to its folder). Returns its location."""
    dest = storage.normalize(dest)
    table = rows if isinstance(rows, pa.Table) else to_table(rows, storage.parent(dest))
    missing = [n for n in REQUIRED if table.num_rows and table[n].null_count]
    if missing:
        raise UsageError(f"rows have nulls in required column(s) {', '.join(missing)}")
    table = _conform(table)
    return storage.write_atomic(dest, lambda fh: pq.write_table(table, fh))


def write_chunks(chunks: Iterable[list[dict]], dest: Location) -> tuple[int, int]:
    """Write a manifest file atomically from chunks of rows, one chunk in memory at a time (absolute
    paths become relative to its folder). Returns (rows, failed rows)."""
    dest = storage.normalize(dest)
    counts = [0, 0]

    def stream(fh) -> None:
        with pq.ParquetWriter(fh, SCHEMA) as writer:
            for rows in chunks:
                table = to_table(rows, storage.parent(dest))
                missing = [n for n in REQUIRED if table.num_rows and table[n].null_count]
                if missing:
                    raise UsageError(f"rows have nulls in required column(s) {', '.join(missing)}")
                writer.write_table(_conform(table))
                counts[0] += table.num_rows
                counts[1] += table.num_rows - (pc.sum(pc.equal(table["status"], "ok").cast(pa.int64())).as_py() or 0)

    storage.write_atomic(dest, stream)
    return counts[0], counts[1]


MARKER = ".hardspoof-manifest"  # an empty file in OUT/manifest/: this folder is a run's output (see corpus.holds_manifest)


def mark(folder: Location) -> None:
    """Create the folder manifest `folder` with its MARKER (a dot-file: readers of the parts never see it)."""
    storage.write_atomic(storage.join(storage.normalize(folder), MARKER), lambda fh: fh.write(b""))


def write_part(rows: Iterable[dict], folder: Location, name: str) -> str:
    """Write rows as a part `name`.parquet of the folder manifest `folder`."""
    return write(to_table(rows, folder), storage.join(storage.normalize(folder), f"{name}.parquet"))


def compact(folder: Location, name: str = "manifest", batch_rows: int = listing.CHUNK) -> str:
    """Merge a folder's parts into one deduplicated part, streaming: memory holds the winner keys
    (utt_id, status, created_at of every row) and one record batch, not the rows.

    Safe beside another run compacting or writing the same folder: the merged part gets a name of its
    own (`name`-<random>.parquet), so it never replaces a part it did not read, and only the parts it read
    are removed afterwards; rows written meanwhile stay in their own parts (a later compaction or any read
    merges them). A part that vanishes while it is read was merged by another compaction, whose merged
    part holds its rows: the compaction starts over. Returns the merged part's location."""
    return over_moving_parts(_compact_once, storage.normalize(folder), name, batch_rows)


def over_moving_parts(fn, *args, attempts: int = 8):
    """fn(*args), started over when a part it listed vanishes before it is read: another run compacted
    the folder meanwhile, and that run's merged part (in a fresh listing) holds the vanished part's rows."""
    for attempt in range(attempts):
        try:
            return fn(*args)
        except FileNotFoundError:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def _column(sources: list, name: str) -> pa.ChunkedArray:
    """One column of every part, in order, read a batch at a time (a whole-table read pre-buffers and uses
    threads: for 2,000,000 utt_ids that held ~1.5x more memory)."""
    chunks = [b.column(0) for src in sources
              for b in pq.ParquetFile(src, pre_buffer=False).iter_batches(batch_size=65536, columns=[name], use_threads=False)]
    return pa.chunked_array(chunks, SCHEMA.field(name).type)


def _compact_once(folder: str, name: str, batch_rows: int) -> str:
    import uuid

    parts = part_files(folder)
    if not parts:
        raise UsageError(f"manifest {folder} has no Parquet parts to compact")
    sources = [storage.readable(p) for p in parts]
    _validated(folder, list(zip(map(storage.name, parts), sources)))
    ids = _column(sources, "utt_id")
    sizes = [pq.ParquetFile(src).metadata.num_rows for src in sources]
    if listing.duplicates(ids) is None:  # every utt_id once (the common case): every row stays, nothing else read
        keep = np.arange(len(ids), dtype=np.int64)
    else:
        keep = winners_by(ids, pc.equal(_column(sources, "status"), "ok"), _column(sources, "created_at")).to_numpy()
    del ids
    listing.release_unused()
    dest = storage.join(folder, f"{name}-{uuid.uuid4().hex[:12]}.parquet")

    def stream(fh) -> None:
        with pq.ParquetWriter(fh, SCHEMA) as writer:
            offset = 0
            for src, size in zip(sources, sizes):
                mine = keep[(keep >= offset) & (keep < offset + size)] - offset
                start = 0
                reader = pq.ParquetFile(src, pre_buffer=False)  # one thread: each pool thread's heap keeps its blocks
                for batch in reader.iter_batches(batch_size=batch_rows, use_threads=False):
                    sel = mine[(mine >= start) & (mine < start + batch.num_rows)] - start
                    if len(sel):
                        writer.write_table(_conform(pa.Table.from_batches([batch])).take(pa.array(sel, pa.int64())))
                    start += batch.num_rows
                    listing.release_unused()
                offset += size

    storage.write_atomic(dest, stream)
    for f in parts:
        storage.remove(f)
    return dest

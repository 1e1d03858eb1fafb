"""Read a manifest as a stream of record batches, for exports that must not hold it whole.

`read` (io.py) returns one table; an export of a manifest whose audio it embeds needs far less: the rows
one batch at a time. What has to see every row first is only which row of a utt_id wins (ok over failed,
then the newest, as `read` decides), and which split a reconstruction without one follows: that first
pass reads four small columns (utt_id, status, created_at, split; plus source_id), never `params` or paths.
"""
from __future__ import annotations

import os
from typing import Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from . import storage
from .io import base_dir, dedupe, part_files, validate
from .schema import SCHEMA

BATCH_ROWS = 256  # rows per record batch read from a part (the export then bounds audio bytes itself)


class ManifestStream:
    """The deduplicated rows of a manifest (v1 schema, paths absolute), as record batches.

    `split(row)` is a row's split, or for a row without one its source's (a reconstruction always stays
    in its source's split). Memory: the winner keys of every row (five small columns), and one batch.
    """

    def __init__(self, manifest: str | os.PathLike, batch_rows: int = BATCH_ROWS):
        self.manifest, self.batch_rows = manifest, batch_rows
        validate(manifest, content=False)  # schema of every part (metadata only)
        self.parts = [storage.readable(p) for p in part_files(manifest)]  # objects fetched once (parts are small)
        self.root = base_dir(manifest)
        keys = []
        for k, src in enumerate(self.parts):
            t = _conform(pq.read_table(src, columns=self._present(src, _KEYS)), _KEYS)
            keys.append(t.append_column("part", pa.array(np.full(t.num_rows, k, np.int32)))
                        .append_column("row", pa.array(np.arange(t.num_rows, dtype=np.int64))))
        table = dedupe(pa.concat_tables(keys)) if keys else None
        self.keep: list[np.ndarray] = [np.zeros(0, np.int64)] * len(self.parts)
        self.source_split: dict[str, str] = {}
        self.has_split = False  # does any row have a split
        if table is None or table.num_rows == 0:
            return
        self.has_split = table["split"].null_count < table.num_rows
        part, row = table["part"].to_numpy(), table["row"].to_numpy()
        self.keep = [np.sort(row[part == k]) for k in range(len(self.parts))]
        orphans = pc.unique(pc.filter(table["source_id"], pc.is_null(table["split"])))  # sources of split-less rows
        known = table.filter(pc.and_(pc.is_in(table["utt_id"], orphans), pc.is_valid(table["split"])))
        self.source_split = dict(zip(known["utt_id"].to_pylist(), known["split"].to_pylist()))

    @staticmethod
    def _present(src, wanted: Sequence[str]) -> list[str]:
        names = set(pq.read_schema(src).names)
        return [c for c in wanted if c in names]

    def split(self, row: dict) -> str | None:
        """The split of a row (a dict with split and source_id): its own, else its source's, else None."""
        return row.get("split") or self.source_split.get(row.get("source_id"))

    def __len__(self) -> int:
        return int(sum(len(k) for k in self.keep))

    def batches(self, columns: Sequence[str] | None = None) -> Iterator[pa.Table]:
        """Tables of up to `batch_rows` winning rows, in part order, in the v1 schema (or its `columns`,
        always with utt_id), paths absolute."""
        cols = None if columns is None else list(dict.fromkeys(["utt_id", *columns]))
        for src, keep in zip(self.parts, self.keep):
            if not len(keep):
                continue
            pf = pq.ParquetFile(src, pre_buffer=False)  # pre-buffering keeps every read range until the file's end
            read = None if cols is None else [c for c in cols if c in pf.schema_arrow.names]
            start = 0
            for batch in pf.iter_batches(batch_size=self.batch_rows, columns=read):
                sel = keep[(keep >= start) & (keep < start + batch.num_rows)] - start
                start += batch.num_rows
                if len(sel):
                    t = _conform(pa.Table.from_batches([batch]), cols).take(pa.array(sel, pa.int64()))
                    yield self._absolute(t if cols is None else t.select(cols))

    def _absolute(self, t: pa.Table) -> pa.Table:
        if "path" not in t.column_names:
            return t
        paths = [p if p is None or storage.isabs(p) else storage.join(self.root, p) for p in t["path"].to_pylist()]
        i = t.schema.get_field_index("path")
        return t.set_column(i, t.schema.field(i), pa.array(paths, pa.string()))


_KEYS = ("utt_id", "status", "created_at", "split", "source_id")


def _conform(table: pa.Table, names: Sequence[str] | None = None) -> pa.Table:
    """The schema's columns (or its `names`), in schema order and type; absent ones null (a reader of one
    major version reads every minor)."""
    fields = [f for f in SCHEMA if names is None or f.name in names]
    cols = [table[f.name].cast(f.type) if f.name in table.column_names else pa.nulls(table.num_rows, f.type)
            for f in fields]
    return pa.Table.from_arrays(cols, schema=pa.schema(fields, metadata=SCHEMA.metadata))

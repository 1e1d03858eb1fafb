"""What `manifests validate` checks in a manifest's rows (the schema check reads metadata only).

Each check yields one problem with a count and an example: nulls in required columns, values
outside an enumeration (label, kind, status, split, method), impossible numbers (negative, NaN or
infinite duration_s; sample_rate outside 1 Hz..MAX_RATE in an ok row; negative num_samples), and utt_ids that
appear in several rows (in one part or across parts) with a different label, kind or source_id:
rows that `read` would silently reduce to one, keeping whichever is newest.
"""
from __future__ import annotations

from typing import Iterable

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .audio import MAX_RATE
from .schema import COLUMNS, KINDS, LABELS, METHODS, REQUIRED, SPLITS, STATUSES

_ENUMS = {"label": LABELS, "kind": KINDS, "status": STATUSES, "split": SPLITS, "method": METHODS}
_IDENTITY = ("label", "kind", "source_id")  # what must agree between rows of one utt_id
_TYPES = {name: typ for name, typ, _, _ in COLUMNS}
_COLUMNS = sorted(set(REQUIRED) | set(_ENUMS) | {"duration_s", "sample_rate", "num_samples"})


def _example(values: pa.Array) -> str:
    return repr(values[0].as_py()) if len(values) else ""


def _part_problems(name: str, t: pa.Table) -> Iterable[str]:
    for col in REQUIRED:
        if col in t.column_names and t[col].null_count:
            yield f"{name}: {t[col].null_count} row(s) with a null {col} (required)"
    for col, allowed in _ENUMS.items():
        if col not in t.column_names:
            continue
        bad = pc.filter(t[col], pc.and_(pc.is_valid(t[col]), pc.invert(pc.is_in(t[col], pa.array(allowed)))))
        if len(bad):
            yield f"{name}: {len(bad)} row(s) with {col} not in {'|'.join(allowed)} (e.g. {_example(bad)})"
    for col, what in (("duration_s", "negative, NaN or infinite"), ("sample_rate", f"outside 1..{MAX_RATE} Hz"),
                      ("num_samples", "negative")):
        if col not in t.column_names:
            continue
        x = t[col]
        ok = pc.greater_equal(x, 0 if col != "sample_rate" else 1)  # false for NaN
        if col == "duration_s":
            ok = pc.and_(ok, pc.less(x, float("inf")))
        elif col == "sample_rate":  # a failed row records whatever header its broken file had
            ok = pc.or_(pc.and_(ok, pc.less_equal(x, MAX_RATE)), pc.not_equal(t["status"], "ok"))
        bad = pc.filter(x, pc.and_(pc.is_valid(x), pc.invert(pc.fill_null(ok, False))))
        if len(bad):
            yield f"{name}: {len(bad)} row(s) with {col} {what} (e.g. {_example(bad)})"


def _conflicts(tables: list[tuple[str, pa.Table]]) -> Iterable[str]:
    """utt_ids in several rows whose label/kind/source_id disagree."""
    cols = [c for c in _IDENTITY if all(c in t.column_names for _, t in tables)]
    if not cols or not all("utt_id" in t.column_names for _, t in tables):
        return
    parts = [t.select(["utt_id", *cols]).append_column("part", pa.array([name] * t.num_rows, pa.string()))
             for name, t in tables]
    both = pa.concat_tables(parts)
    agg = both.group_by("utt_id").aggregate([(c, "count_distinct") for c in cols])
    differs = pc.greater(agg[f"{cols[0]}_count_distinct"], 1)
    for c in cols[1:]:
        differs = pc.or_(differs, pc.greater(agg[f"{c}_count_distinct"], 1))
    bad = pc.filter(agg["utt_id"], differs)
    if not len(bad):
        return
    first = bad[0].as_py()
    where = sorted(set(pc.filter(both["part"], pc.equal(both["utt_id"], first)).to_pylist()))
    yield (f"{len(bad)} utt_id(s) in several rows with a different {'/'.join(cols)} (e.g. {first!r} in "
           f"{', '.join(where)})")


def content_problems(sources: list[tuple[str, object]]) -> list[str]:
    """Problems in the rows of each part (name, what pyarrow opens), then across parts."""
    tables, problems = [], []
    for name, src in sources:
        schema = pq.read_schema(src)
        if hasattr(src, "seek"):
            src.seek(0)
        t = pq.read_table(src, columns=[c for c in _COLUMNS if c in schema.names])
        t = t.cast(pa.schema([pa.field(f.name, _TYPES[f.name]) for f in t.schema]))  # nullable, all-null typed
        if hasattr(src, "seek"):
            src.seek(0)
        tables.append((name, t))
        problems += _part_problems(name, t)
    problems += _conflicts(tables)
    return problems

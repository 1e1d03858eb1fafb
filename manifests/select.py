"""`--select COLUMN=VALUE[,VALUE...]`: the corpus clips a run takes. A clip is kept when its column holds one
of the values; several selections must all hold (AND): `--select label=bonafide --select split=train` is the
paper's "bona fide training speech". Columns are a corpus listing's (the protocol's columns under their
manifest names); labels and splits may be spelled as corpora spell them (`bona-fide`, `validation`).
"""
from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from .errors import UsageError
from .schema import LABEL_SPELLINGS, LABELS, SPLIT_SPELLINGS, SPLITS

COLUMNS = ("utt_id", "label", "attack", "speaker", "language", "split")
Selection = tuple[tuple[str, tuple[str, ...]], ...]  # ((column, (value, ...)), ...): AND over columns, OR in one


def _canonical(column: str, value: str, pair: str) -> str:
    spellings, allowed = {"label": (LABEL_SPELLINGS, LABELS), "split": (SPLIT_SPELLINGS, SPLITS)}.get(column, ({}, ()))
    if not allowed:
        return value
    if value.lower() not in spellings:
        raise UsageError(f"--select {pair!r}: {column} is one of {', '.join(allowed)}, not {value!r}")
    return spellings[value.lower()]


def parse_select(pairs: tuple[str, ...] | list[str]) -> Selection:
    """`("label=bonafide", "split=train,dev")` -> `(("label", ("bonafide",)), ("split", ("train", "dev")))`;
    a pair that is not COLUMN=VALUE[,VALUE...] or names an unknown column is a UsageError."""
    out = []
    for pair in pairs:
        column, sep, raw = pair.partition("=")
        column = column.strip()
        values = [v.strip() for v in raw.split(",") if v.strip()]
        if not sep or not column or not values:
            raise UsageError(f"--select {pair!r} is not COLUMN=VALUE[,VALUE...] (e.g. --select label=bonafide)")
        if column not in COLUMNS:
            raise UsageError(f"--select {pair!r}: unknown column {column!r}; choose from {', '.join(COLUMNS)}")
        out.append((column, tuple(dict.fromkeys(_canonical(column, v, pair) for v in values))))
    return tuple(out)


def select_rows(table: pa.Table, selection: Selection) -> pa.Table:
    """The rows of a listing (or manifest) table that every selection keeps; a selection that keeps nothing
    is a UsageError naming the values its column holds (a typo, not an empty run)."""
    if not selection:
        return table
    mask = None
    for column, values in selection:
        if column not in table.column_names:
            raise UsageError(f"--select {column}=...: the corpus has no {column} column")
        keep = pc.is_in(pc.cast(table[column], pa.string()), value_set=pa.array(values, pa.string()))
        mask = keep if mask is None else pc.and_(mask, keep)
    kept = table.filter(mask)
    if kept.num_rows == 0:
        held = {c: sorted(v for v in pc.unique(pc.cast(table[c], pa.string())).to_pylist() if v is not None)[:8]
                for c, _ in selection}
        said = " ".join(f"--select {c}={','.join(v)}" for c, v in selection)
        holds = "; ".join(f"{c} holds: {', '.join(v) or 'nothing'}" for c, v in held.items())
        raise UsageError(f"{said}: no corpus clip matches ({holds})")
    return kept

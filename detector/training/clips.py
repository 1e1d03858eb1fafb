"""The trainer's clip table: one column per field, a `Clip` built only when one is asked for.

A million manifest rows as a million Python objects cost about 3 KB each in the training driver (issue 29,
case 8); as columns they cost the strings' bytes (utt_id, path, source_id) and a few bytes of codes for
the fields that repeat (kind, method, model, attack, speaker, split are dictionary-encoded).
`benchmarks/bench_train_rows.py` measures it. The functions that work on every clip at once (splits,
held-out attacks, the sampler's pools) read the columns; code that wants one clip indexes the table.
"""
from __future__ import annotations

import gc
import os
from dataclasses import dataclass, fields
from typing import Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


@dataclass(frozen=True)
class Clip:
    utt_id: str
    path: str
    label: int                 # 1 bona fide, 0 spoof (after the label policy)
    kind: str                  # original | reconstruction
    source_id: str             # utt_id of the original this clip derives from
    method: str | None         # reconstruction paradigm, None for originals
    model: str | None          # reconstruction back-end, None for originals
    attack: str                # corpus attack id, '-' for bona fide
    speaker: str | None
    split: str | None


FIELDS = tuple(f.name for f in fields(Clip))
_REPEATING = ("kind", "method", "model", "attack", "speaker", "split")
_TYPES = {name: pa.int8() if name == "label" else pa.string() for name in FIELDS}
# A path is kept as its folder (dictionary-encoded: the clips of a corpus share a few folders) and its file
# name; `column("path")` and the Clips put them back together. At a million rows of paths 38 bytes long
# that is 10 MiB instead of 38.
_DIR, _NAME = "path_dir", "path_name"
_STORED = tuple(name for name in FIELDS if name != "path") + (_DIR, _NAME)
_SPLIT = r"(?s)^(?P<dir>.*/)?(?P<name>[^/]*)$"  # dir + name == path, whatever the path


def _one(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):  # one chunk as it is: combine_chunks would copy it
        return values.chunk(0) if values.num_chunks == 1 else values.combine_chunks()
    return values


def _encoded(name: str, values: pa.Array | pa.ChunkedArray) -> pa.Array:
    if name in _REPEATING:  # encoded chunk by chunk, then the codes combined: no copy of the strings
        if not (pa.types.is_dictionary(values.type) and values.type.value_type == pa.string()):
            values = pc.dictionary_encode(values.cast(pa.string()))
        return _narrow(_one(values))  # (a filtered or taken column keeps its codes)
    values = _one(values)
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    return values.cast(_TYPES[name])


def _narrow(values: pa.DictionaryArray) -> pa.DictionaryArray:
    """The same codes in the smallest integer that holds them (int8 for a few values: 1 byte a row, not 4)."""
    n = len(values.dictionary)
    index = pa.int8() if n <= 127 else pa.int16() if n <= 32767 else pa.int32()
    if values.type.index_type == index:
        return values
    return pa.DictionaryArray.from_arrays(values.indices.cast(index), values.dictionary)


def _split_path(path: pa.Array | pa.ChunkedArray, block: int = 65536) -> tuple[pa.Array, pa.Array]:
    """(folder, dictionary-encoded; file name) of each path, '' for a path without a folder; a block of rows at
    a time, so that no full-length column of folders is ever made."""
    path = path if isinstance(path, pa.ChunkedArray) else pa.chunked_array([path])
    folders, names = [], []
    for chunk in path.chunks:
        for start in range(0, len(chunk), block):
            parts = pc.extract_regex(_encoded("path", chunk.slice(start, block)), _SPLIT)
            folders.append(pc.dictionary_encode(pc.struct_field(parts, "dir")))
            names.append(pc.struct_field(parts, "name"))
    if not names:
        return _narrow(pa.array([], pa.string()).dictionary_encode()), pa.array([], pa.string())
    return _narrow(pa.chunked_array(folders).combine_chunks()), pa.concat_arrays(names)


def _joined(folder, name) -> str | None:
    return None if name is None else (folder or "") + name


class Clips(Sequence[Clip]):
    """Clips as columns (a pyarrow Table with the fields of `Clip`, the path as folder and file name);
    `clips[i]` is a Clip, `clips[a:b]`, `take` and `filter` are Clips again, iteration yields Clips a batch
    of rows at a time."""

    def __init__(self, table: pa.Table):
        columns = {name: _encoded(name, table[name]) for name in FIELDS if name != "path"}  # no copy kept
        if _DIR in table.column_names:  # a table of Clips (take, filter): the path is split already
            columns[_DIR], columns[_NAME] = _narrow(_one(table[_DIR])), _one(table[_NAME])
        else:
            columns[_DIR], columns[_NAME] = _split_path(table["path"])
        self._columns = columns
        self.table = pa.table({name: columns[name] for name in _STORED})

    @classmethod
    def of(cls, clips: Sequence[Clip] | Clips) -> Clips:
        """`clips` as a table (itself when it is one)."""
        if isinstance(clips, Clips):
            return clips
        rows = {name: [getattr(c, name) for c in clips] for name in FIELDS}
        return cls(pa.table({name: pa.array(v, _TYPES[name]) for name, v in rows.items()}))

    def __len__(self) -> int:
        return self.table.num_rows

    def __getitem__(self, i):
        if isinstance(i, slice):
            return self.take(np.arange(len(self))[i])
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        row = {name: self._columns[name][i].as_py() for name in _STORED}
        return Clip(path=_joined(row.pop(_DIR), row.pop(_NAME)), **row)

    def __iter__(self) -> Iterator[Clip]:
        for batch in self.table.to_batches(max_chunksize=4096):
            for row in batch.to_pylist():
                yield Clip(path=_joined(row.pop(_DIR), row.pop(_NAME)), **row)

    def __repr__(self) -> str:
        return f"Clips({len(self)} rows)"

    def take(self, indices) -> Clips:
        return Clips(self.table.take(pa.array(np.asarray(indices, dtype=np.int64))))

    def filter(self, mask: np.ndarray) -> Clips:
        return Clips(self.table.filter(pa.array(np.asarray(mask, dtype=bool))))

    def with_column(self, name: str, values) -> Clips:
        values = values if isinstance(values, (pa.Array, pa.ChunkedArray)) else pa.array(values, _TYPES[name])
        if name == "path":
            return Clips(self.table.drop_columns([_DIR, _NAME]).append_column("path", _encoded(name, values)))
        return Clips(self.table.set_column(_STORED.index(name), name, _encoded(name, values)))

    def column(self, name: str) -> pa.Array:
        """One field's values (repeating ones dictionary-encoded; paths joined from folder and name)."""
        if name == "path":
            return pc.binary_join_element_wise(self._columns[_DIR].dictionary_decode(), self._columns[_NAME], "")
        if name not in FIELDS:
            raise KeyError(name)
        return self._columns[name]

    def strings(self, name: str) -> pa.Array:
        """One field's values as plain strings."""
        col = self.column(name)
        return col.dictionary_decode() if pa.types.is_dictionary(col.type) else col

    def equals(self, name: str, value: str) -> np.ndarray:
        """(N,) bool: the rows whose `name` is `value` (null is never equal)."""
        return pc.fill_null(pc.equal(self.strings(name), value), False).to_numpy(zero_copy_only=False)

    def labels(self) -> np.ndarray:
        """(N,) int8: 1 bona fide, 0 spoof."""
        return self.column("label").to_numpy(zero_copy_only=False)

    def is_reconstruction(self) -> np.ndarray:
        return self.equals("kind", "reconstruction")

    def positions_of_sources(self, among: np.ndarray) -> np.ndarray:
        """(N,) int64: for each row, the row index of the clip whose utt_id is its source_id, looked up among the
        rows where `among` (a bool mask) holds; -1 where there is none."""
        rows = np.flatnonzero(among)
        where = pc.index_in(self.column("source_id"), value_set=self.column("utt_id").take(pa.array(rows)))
        found = pc.fill_null(where, -1).to_numpy(zero_copy_only=False).astype(np.int64)
        return np.where(found >= 0, rows[np.maximum(found, 0)] if len(rows) else -1, -1)


_CHECKED: set[tuple] = set()  # what check_content passed in this process: (paths, each local part's size and mtime)


def _identity(paths: Sequence[str]) -> tuple | None:
    """What must not have changed for an earlier check of `paths` to hold; None for remote manifests (always
    checked again)."""
    import manifests
    from manifests import storage

    parts = []
    for path in paths:
        for f in manifests.part_files(path):
            if storage.is_uri(f):
                return None
            st = os.stat(f)
            parts.append((f, st.st_size, st.st_mtime_ns))
    return (tuple(map(str, paths)), tuple(parts))


def check_content(paths: Sequence[str | os.PathLike]) -> None:
    """Refuse (UsageError, one line) what `manifests validate` refuses in the rows of `paths`, taken
    together: nulls in required columns, values outside an enumeration, impossible numbers, and an utt_id
    whose rows (in one manifest or across them) disagree on label, kind or source_id (named, with a count).
    Rows that agree are not a problem here (`load_clips` merges and counts them).

    Torch-free, so `detector train` runs it before it loads torch (the check's Arrow tables are handed back
    to the OS when it ends: at a million rows they peak near 600 MiB); a second call on unchanged local
    manifests returns at once."""
    import manifests
    from manifests import storage
    from manifests.checks import content_problems
    from manifests.errors import UsageError
    from manifests.listing import release_unused

    for path in paths:
        manifests.validate(path, content=False)  # the schema first: an unreadable part is named, not opened
    key = _identity(paths)
    if key is not None and key in _CHECKED:
        return
    one = len(paths) == 1
    sources = [(storage.name(f) if one else f"{path}: {storage.name(f)}", storage.readable(f))
               for path in paths for f in manifests.part_files(path)]
    problems = content_problems(sources)
    del sources
    gc.collect()  # now and then a reference cycle still holds one of the check's tables (some 50 MiB at 1M rows)
    release_unused()
    if problems:
        where = "manifest " + ", ".join(map(str, paths))
        raise UsageError(f"{where} has rows `manifests validate` refuses, {len(problems)} problem(s): "
                         + "; ".join(problems) + " (`manifests validate` lists them too)")
    if key is not None:
        _CHECKED.add(key)

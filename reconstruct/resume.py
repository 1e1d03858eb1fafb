"""What an output folder already holds, as it bears on this run, and how the run's plan relates to it.

`Done.read` reads from the output manifest only the columns a resume needs (originals: identity, status,
duration; reconstructions: what made them), one batch at a time, and keeps only what concerns this run's
corpus listing and model variants, as numbers aligned to the listing: per listing row, whether OUT holds a
described original from the same file (same path, file_size and file_mtime_ns), its status and duration;
per finished reconstruction of this run's variants, the listing row of its source, its variant, seed,
parameters and weights (as codes). No utt_id or path string of OUT is held, so what a resume keeps grows
by a few bytes per clip. `Done.reusable` and `Done.finished` then answer for a chunk of the listing, and
`Done.conflicts` checks that what made each finished reconstruction (canonical parameters, weights sha256,
per-clip seed) is what this run would use: a difference is a Conflict naming the field, never a silent skip.
"""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

import manifests
from manifests import listing, storage
from manifests.errors import UsageError

ORIGINAL_COLUMNS = ("utt_id", "path", "status", "duration_s", "file_size", "file_mtime_ns", "created_at")
RECON_COLUMNS = ("utt_id", "source_id", "status", "seed", "params", "checkpoint_sha256", "created_at")
NONE, OK, FAILED = -1, 0, 1      # status codes of a listing row's original in OUT


class Conflict(UsageError):
    """The output folder holds reconstructions that this run would make differently."""


def _batches(manifest_dir: str, kind: str, columns: tuple[str, ...], batch_rows: int = listing.CHUNK):
    """The rows of one kind in every part of OUT's manifest, `columns` only, `batch_rows` at a time (params and
    checkpoint_sha256 dictionary-encoded), as tables."""
    for part in manifests.part_files(manifest_dir):
        pf = pq.ParquetFile(storage.readable(part), read_dictionary=["kind", "params", "checkpoint_sha256"],
                            pre_buffer=False)  # pre-buffering keeps every read range of the file until its end
        have = set(pf.schema_arrow.names)
        for batch in pf.iter_batches(batch_size=batch_rows, columns=[c for c in (*columns, "kind") if c in have],
                                     use_threads=False):
            t = pa.Table.from_batches([batch])
            t = t.filter(pc.equal(t["kind"].cast(pa.string()), kind))
            yield pa.table({c: t[c] if c in t.column_names else pa.nulls(t.num_rows, _type(c)) for c in columns})
            del t
            listing.release_unused()  # the batch's buffers go back at once, not kept by the allocator for reuse


def _type(column: str) -> pa.DataType:
    return manifests.SCHEMA.field(column).type


def _stored_paths(paths: pa.Array, root: str, manifest_dir: str) -> pa.Array:
    """Listing paths (under the folder `root`) in the form the manifest stores them: relative to its folder
    when they could be."""
    if not manifest_dir or storage.relative(root, manifest_dir) == root:
        return paths
    rel_root = storage.relative(root, manifest_dir)
    return pc.binary_join_element_wise(pa.scalar(rel_root.rstrip("/") + "/"),
                                       pc.utf8_slice_codeunits(paths, len(root.rstrip("/")) + 1), "")


class _ListingRows:
    """The listing row of a utt_id, by binary search in the listing's utt_ids sorted once (a folder's listing
    already is: then nothing is copied), so each batch of OUT costs O(batch log n), not a hash table of the
    whole listing per batch."""

    def __init__(self, ids: pa.ChunkedArray):
        ascending = listing.ascending(ids)
        self.order = None if ascending else pc.sort_indices(ids)
        self.sorted = ids if ascending else ids.take(self.order)

    def of(self, t: pa.Table, column: str) -> tuple[pa.Table, np.ndarray]:
        """The rows of a batch whose `column` names a clip of the listing, and those clips' listing rows."""
        if not len(self.sorted):
            return t.slice(0, 0), np.zeros(0, np.int64)
        at = pc.min_element_wise(pc.search_sorted(self.sorted, t[column]), len(self.sorted) - 1)
        hit = pc.fill_null(pc.equal(self.sorted.take(at), t[column]), False)
        rows = at.filter(hit)
        if self.order is not None:
            rows = self.order.take(rows)
        return t.filter(hit), rows.to_numpy(zero_copy_only=False).astype(np.int64)


class _Kept:
    """Columns of OUT's rows, batch by batch, each row under an integer key; then the row that wins each key
    (ok over failed, then the newest: as a manifest read keeps one row per utt_id). Each column is one array
    that doubles when full (pages not yet written take no memory), so nothing is joined at the end and no
    batch's small arrays are kept between the ones the batches free."""

    START = 65_536  # rows of a column's first array

    def __init__(self):
        self.columns: dict[str, np.ndarray] = {}
        self.n = 0

    def add(self, key: np.ndarray, t: pa.Table, **columns: np.ndarray) -> None:
        ok = pc.fill_null(pc.equal(t["status"], "ok"), False).to_numpy(zero_copy_only=False)
        created = pc.fill_null(t["created_at"].cast(pa.int64()), 0).to_numpy(zero_copy_only=False)
        end = self.n + len(key)
        for name, values in {"key": key, "ok": ok, "created": created, **columns}.items():
            have = self.columns.get(name)
            dtype = values.dtype if have is None else np.result_type(have.dtype, values.dtype)
            if have is None or end > len(have) or dtype != have.dtype:
                grown = np.empty(max(end, 2 * len(have) if have is not None else self.START), dtype)
                if have is not None:
                    grown[:self.n] = have[:self.n]
                self.columns[name] = have = grown
            have[self.n:end] = values
        self.n = end

    def winners(self) -> dict[str, np.ndarray] | None:
        if not self.n:
            return None
        c = {name: values[:self.n] for name, values in self.columns.items()}
        self.columns = {}
        seen = np.zeros(int(c["key"].max()) + 1, np.uint8)
        seen[c["key"]] = 1
        if int(seen.sum()) == self.n:  # every key once (the common case): nothing to choose, nothing copied
            return c
        del seen
        win = manifests.io.winners_by(c["key"], c["ok"], c["created"]).to_numpy()
        return {name: values[win] for name, values in c.items()}


class _Codes:
    """Global int32 codes of the few distinct values of a dictionary column, across batches."""

    def __init__(self):
        self.values: list = []
        self._index: dict = {}

    def of(self, column: pa.ChunkedArray) -> np.ndarray:
        out = []
        for chunk in column.chunks:
            if not pa.types.is_dictionary(chunk.type):
                chunk = pc.dictionary_encode(chunk)
            local = np.array([self._code(v) for v in chunk.dictionary.to_pylist()] + [-1], np.int32)
            idx = chunk.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
            out.append(local[idx])
        return np.concatenate(out) if out else np.zeros(0, np.int32)

    def _code(self, value) -> int:
        if value not in self._index:
            self._index[value] = len(self.values)
            self.values.append(value)
        return self._index[value]


@dataclasses.dataclass
class Done:
    status: np.ndarray        # per listing row: NONE / OK / FAILED of its original in OUT
    same: np.ndarray          # per listing row: OUT's original was made from the same file (path, size, mtime)
    identified: np.ndarray    # per listing row: OUT's original recorded a file identity (size)
    duration_s: np.ndarray    # per listing row: OUT's original's duration (float32, as the manifest stores it; NaN when none)
    has_recons: np.ndarray    # per listing row: OUT holds reconstructions of it (any model)
    recons: pa.Table          # finished reconstructions of this run's variants, by listing row: row, variant, ok, seed,
                              # params_code, sha_code
    manifest_dir: str = ""
    params_values: list = dataclasses.field(default_factory=list)
    sha_values: list = dataclasses.field(default_factory=list)

    @classmethod
    def read(cls, manifest_dir: str, table: pa.Table, root: str, variants: list[str]) -> "Done":
        """What OUT's manifest holds about the listing `table` (paths under `root`) and `variants`."""
        if storage.kind(manifest_dir) != storage.DIR or not manifests.part_files(manifest_dir):
            return cls._nothing(table.num_rows, manifest_dir)
        done = manifests.io.over_moving_parts(cls._read, manifest_dir, table, root, variants)
        listing.release_unused()
        return done

    @classmethod
    def _nothing(cls, n: int, manifest_dir: str) -> "Done":
        """An output folder that holds nothing yet, for a listing of n rows."""
        recons = pa.table({"row": pa.array([], pa.int32()), "variant": pa.array([], pa.int32()),
                           "ok": pa.array([], pa.bool_()), "seed": pa.array([], pa.int64()),
                           "params_code": pa.array([], pa.int32()), "sha_code": pa.array([], pa.int32())})
        return cls(np.full(n, NONE, np.int8), np.zeros(n, bool), np.zeros(n, bool), np.full(n, np.nan, np.float32),
                   np.zeros(n, bool), recons, manifest_dir)

    @classmethod
    def _read(cls, manifest_dir: str, table: pa.Table, root: str, variants: list[str]) -> "Done":
        rows_of = _ListingRows(table["utt_id"])
        originals = _Kept()
        for t in _batches(manifest_dir, "original", ORIGINAL_COLUMNS):
            t, r = rows_of.of(t, "utt_id")
            if not len(r):
                continue
            here = _stored_paths(table["path"].take(r), root, manifest_dir)
            same = pc.and_(pc.and_(pc.equal(t["path"], here), pc.equal(t["file_size"], table["file_size"].take(r))),
                           pc.equal(t["file_mtime_ns"], table["file_mtime_ns"].take(r)))
            originals.add(r.astype(np.int32), t, same=pc.fill_null(same, False).to_numpy(zero_copy_only=False),
                          identified=pc.is_valid(t["file_size"]).to_numpy(zero_copy_only=False),
                          duration=pc.fill_null(t["duration_s"].cast(pa.float32()), np.nan).to_numpy(zero_copy_only=False))
        done = cls._nothing(table.num_rows, manifest_dir)
        won = originals.winners()
        if won:
            at = won["key"]
            done.status[at] = np.where(won["ok"], OK, FAILED)
            done.same[at], done.identified[at], done.duration_s[at] = won["same"], won["identified"], won["duration"]

        n_variants = max(len(variants), 1)  # a reconstruction's key: its source's listing row and its variant
        params, shas, recons = _Codes(), _Codes(), _Kept()
        for t in _batches(manifest_dir, "reconstruction", RECON_COLUMNS):
            t, r = rows_of.of(t, "source_id")
            if not len(r):
                continue
            done.has_recons[r] = True
            variant = np.full(len(r), -1, np.int64)
            for v, name in enumerate(variants):
                mine = pc.equal(t["utt_id"], pc.binary_join_element_wise(t["source_id"], pa.scalar(f"__{name}"), ""))
                variant[pc.fill_null(mine, False).to_numpy(zero_copy_only=False)] = v
            keep = variant >= 0
            if not keep.any():
                continue
            t = t.filter(pa.array(keep))
            recons.add(r[keep].astype(np.int64) * n_variants + variant[keep], t, seed=t["seed"].to_numpy(),
                       params_code=params.of(t["params"]), sha_code=shas.of(t["checkpoint_sha256"]))
        won = recons.winners()
        if won:
            del won["created"]
            if (np.diff(won["key"]) < 0).any():  # by listing row, so that a chunk of the plan finds its own by slicing
                order = np.argsort(won["key"], kind="stable")
                for name in won:  # a column at a time: never two copies of them all
                    won[name] = won[name][order]
                del order
            key = won.pop("key")
            columns = {"row": (key // n_variants).astype(np.int32), "variant": (key % n_variants).astype(np.int32)}
            del key
            done.recons = pa.table({**columns, **{name: won.pop(name) for name in ("ok", "seed", "params_code", "sha_code")}})
        done.params_values, done.sha_values = params.values, shas.values
        return done

    def reusable(self, rows: np.ndarray, retry_failed: bool) -> pa.Table:
        """For the listing rows `rows` (indices): `cached` (the described row in OUT can be reused: same path,
        size and mtime; a failed one only without --retry-failed), `ok` (OUT's row of it is ok), `duration_s`,
        `changed` (a row exists for its utt_id, made from another path or another version of the file, or by a
        version of this toolkit that did not record file identities), `identified` and `has_recons`."""
        status, same = self.status[rows], self.same[rows]
        cached = same & (status != NONE) & ((status == OK) | (not retry_failed))
        return pa.table({"cached": pa.array(cached),
                         "ok": pa.array(status == OK),
                         "duration_s": pa.array(self.duration_s[rows].astype(np.float64), from_pandas=True),
                         "changed": pa.array((status != NONE) & ~same),
                         "identified": pa.array(self.identified[rows]),
                         "has_recons": pa.array(self.has_recons[rows])})

    def finished(self, tasks: pa.Table, rows: pa.Array, variant: int, retry_failed: bool) -> pa.Table:
        """The done reconstruction rows matching `tasks` (whose sources are the listing rows `rows`) of the
        variant with index `variant` (ok ones; failed ones too unless --retry-failed), with the task's seed
        beside the row's and whether the row is ok (`done_ok`)."""
        recons = self.recons
        if len(rows) and recons.num_rows:  # recons are in listing-row order: the chunk's rows are one slice of them
            by_row = recons["row"].chunk(0).to_numpy()
            lo, hi = pc.min_max(rows).values()
            start, end = np.searchsorted(by_row, lo.as_py()), np.searchsorted(by_row, hi.as_py(), side="right")
            recons = recons.slice(start, end - start)
        recons = recons.filter(pc.equal(recons["variant"], variant))
        if retry_failed:
            recons = recons.filter(recons["ok"])
        mine = pa.table({"utt_id": tasks["utt_id"], "seed": tasks["seed"], "source_id": tasks["source_id"],
                         "row": rows.cast(pa.int32())})
        return mine.join(recons.select(["row", "seed", "params_code", "sha_code", "ok"]).rename_columns(
            ["row", "done_seed", "params_code", "sha_code", "done_ok"]), "row", join_type="inner", use_threads=False)

    def conflicts(self, finished: pa.Table, params: dict, weights_sha: str | None, variant: str) -> str | None:
        """Why finished reconstructions of `variant` cannot count as this run's, or None: another per-clip
        seed (another --seed), other parameters (the ones the back-end takes; derived values it records
        beside them are not compared), other weights (sha256 recorded by the back-end)."""
        if not finished.num_rows:
            return None

        def stored_params_differ(code: int) -> bool:
            stored = json.loads(self.params_values[code]) if self.params_values[code] else {}
            return any(stored.get(k) != v for k, v in params.items())

        checks = [("a different --seed (per-clip seed {done} in OUT, {now} now)",
                   pc.not_equal(finished["seed"], finished["done_seed"]),
                   lambda r: (r["done_seed"], r["seed"]))]
        bad_params = [c for c in range(len(self.params_values)) if stored_params_differ(c)]
        if bad_params:
            checks.append(("other parameters ({done} in OUT, {now} now)",
                           pc.is_in(finished["params_code"], value_set=pa.array(bad_params, pa.int32())),
                           lambda r: (self.params_values[r["params_code"]], json.dumps(params, sort_keys=True))))
        bad_sha = [c for c, v in enumerate(self.sha_values) if weights_sha is not None and v is not None and v != weights_sha]
        if bad_sha:
            checks.append(("other weights (sha256 {done} in OUT, {now} now; another --checkpoint or store entry)",
                           pc.is_in(finished["sha_code"], value_set=pa.array(bad_sha, pa.int32())),
                           lambda r: (self.sha_values[r["sha_code"]][:12] + "…", weights_sha[:12] + "…")))
        for words, mask, values in checks:
            bad = finished.filter(pc.fill_null(mask, False))
            if bad.num_rows:
                done, now = values(bad.slice(0, 1).to_pylist()[0])
                return (f"{bad.num_rows} finished {variant} reconstruction(s) made with "
                        + words.format(done=done, now=now) + f", e.g. {bad['utt_id'][0].as_py()}")
        return None

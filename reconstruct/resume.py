"""What an output folder already holds, read column by column, and how this run's plan relates to it.

`Done.read` reads from the output manifest only the columns a resume needs (originals: identity, status,
duration; reconstructions: what made them), one part at a time, keeping the winning row of each utt_id.
`Done.split` then sorts a chunk of the corpus listing into originals whose described row can be reused
(same path, file_size and file_mtime_ns) and originals to describe, and checks that what made each
finished reconstruction (canonical parameters, weights sha256, per-clip seed, source audio) is what this
run would use: a difference is a Conflict naming the field, never a silent skip.
"""
from __future__ import annotations

import dataclasses
import json

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

import manifests
from manifests import listing, storage
from manifests.errors import UsageError

ORIGINAL_COLUMNS = ("utt_id", "path", "status", "duration_s", "file_size", "file_mtime_ns", "created_at")
RECON_COLUMNS = ("utt_id", "source_id", "status", "seed", "params", "checkpoint_sha256", "created_at")
RECON_KEPT = ("utt_id", "source_id", "status", "seed", "params_code", "sha_code")


class Conflict(UsageError):
    """The output folder holds reconstructions that this run would make differently."""


def _read(manifest_dir: str, kind: str, columns: tuple[str, ...], batch_rows: int = 65536) -> pa.Table:
    """The winning row of each utt_id of one kind, only `columns` (params and checkpoint_sha256
    dictionary-encoded: a few distinct values, not a string per row). Parts are read `batch_rows` at a time,
    so only the rows of this kind are ever held whole."""
    tables = []
    for part in manifests.part_files(manifest_dir):
        pf = pq.ParquetFile(storage.readable(part), read_dictionary=["kind", "params", "checkpoint_sha256"])
        have = set(pf.schema_arrow.names)
        for batch in pf.iter_batches(batch_size=batch_rows, columns=[c for c in (*columns, "kind") if c in have]):
            t = pa.Table.from_batches([batch])
            t = t.filter(pc.equal(t["kind"].cast(pa.string()), kind))
            tables.append(pa.table({c: t[c] if c in t.column_names else pa.nulls(t.num_rows, _type(c))
                                    for c in columns}))
    if not tables:
        return pa.table({c: pa.array([], _type(c)) for c in columns})
    table = pa.concat_tables(tables, promote_options="permissive")
    keep = manifests.io.winners(table["utt_id"], table["status"], table["created_at"])
    table = table if len(keep) == table.num_rows else table.take(keep)
    return table.unify_dictionaries() if any(pa.types.is_dictionary(f.type) for f in table.schema) else table


def _codes(column: pa.ChunkedArray) -> tuple[pa.Array, list]:
    """(int32 code per row, the distinct values) of a (dictionary-encoded) column."""
    if not pa.types.is_dictionary(column.type):
        column = pa.chunked_array([pc.dictionary_encode(column.combine_chunks())])
    if column.num_chunks == 0:
        return pa.array([], pa.int32()), []
    values = column.chunk(0).dictionary.to_pylist()
    codes = pa.concat_arrays([c.indices.cast(pa.int32()) for c in column.chunks])
    return codes, values


def _rows_of(table: pa.Table, utt_ids) -> pa.Table:
    """The rows of `table` whose utt_id is in `utt_ids` (a chunk's): the join that follows builds its hash
    table over these, not over every row of the output folder."""
    return table.filter(pc.is_in(table["utt_id"], value_set=pa.chunked_array(utt_ids).combine_chunks()))


def _type(column: str) -> pa.DataType:
    return manifests.SCHEMA.field(column).type


@dataclasses.dataclass
class Done:
    originals: pa.Table      # ORIGINAL_COLUMNS, paths as stored (relative to the manifest folder when they could be)
    recons: pa.Table         # RECON_KEPT: params and checkpoint_sha256 as codes into the two lists below
    manifest_dir: str = ""
    params_values: list = dataclasses.field(default_factory=list)
    sha_values: list = dataclasses.field(default_factory=list)

    @classmethod
    def read(cls, manifest_dir: str) -> "Done":
        if storage.kind(manifest_dir) != storage.DIR or not manifests.part_files(manifest_dir):
            empty = {c: pa.array([], _type(c)) for c in ORIGINAL_COLUMNS}
            recons = {c: pa.array([], pa.int32() if c.endswith("_code") else _type(c)) for c in RECON_KEPT}
            return cls(pa.table(empty), pa.table(recons), manifest_dir)
        return manifests.io.over_moving_parts(cls._read, manifest_dir)

    @classmethod
    def _read(cls, manifest_dir: str) -> "Done":
        recons = _read(manifest_dir, "reconstruction", RECON_COLUMNS)
        params, params_values = _codes(recons["params"])
        sha, sha_values = _codes(recons["checkpoint_sha256"])
        recons = pa.table({"utt_id": recons["utt_id"], "source_id": recons["source_id"], "status": recons["status"],
                           "seed": recons["seed"], "params_code": params, "sha_code": sha})
        done = cls(_read(manifest_dir, "original", ORIGINAL_COLUMNS), recons, manifest_dir, params_values, sha_values)
        listing.release_unused()
        return done

    def reusable(self, chunk: pa.Table, root: str, retry_failed: bool) -> pa.Table:
        """For each listing row of `chunk` (its paths under the folder `root`): `cached` (its described row
        can be reused: same path, size and mtime; a failed one only without --retry-failed), `status`,
        `duration_s`, and `changed` (a row exists for its utt_id, made from another path or another
        version of the file, or by a version of this toolkit that did not record file identities)."""
        # the manifest stores a path relative to its folder when it can: the listing's in the same form
        as_stored = chunk["path"]
        if self.manifest_dir and storage.relative(root, self.manifest_dir) != root:
            rel_root = storage.relative(root, self.manifest_dir)
            as_stored = pc.binary_join_element_wise(
                pa.scalar(rel_root.rstrip("/") + "/"), pc.utf8_slice_codeunits(chunk["path"], len(root.rstrip("/")) + 1), "")
        mine = _rows_of(self.originals, chunk["utt_id"])
        joined = pa.table({"utt_id": chunk["utt_id"], "path": as_stored, "file_size": chunk["file_size"],
                           "file_mtime_ns": chunk["file_mtime_ns"]}).join(
            mine.rename_columns([f"m_{c}" for c in ORIGINAL_COLUMNS]), "utt_id", "m_utt_id",
            join_type="left outer", use_threads=False)
        same = pc.and_(pc.and_(pc.equal(joined["path"], joined["m_path"]),
                               pc.equal(joined["file_size"], joined["m_file_size"])),
                       pc.equal(joined["file_mtime_ns"], joined["m_file_mtime_ns"]))
        same = pc.fill_null(same, False)
        ok = pc.fill_null(pc.equal(joined["m_status"], "ok"), False)
        cached = pc.and_(same, pc.or_(ok, pa.scalar(not retry_failed)))
        changed = pc.and_(pc.is_valid(joined["m_status"]), pc.invert(same))
        return pa.table({"utt_id": joined["utt_id"], "cached": cached, "status": joined["m_status"],
                         "duration_s": joined["m_duration_s"], "changed": changed,
                         "m_file_size": joined["m_file_size"]})

    def finished(self, tasks: pa.Table, retry_failed: bool) -> pa.Table:
        """The done reconstruction rows matching `tasks` by utt_id (ok ones; failed ones too unless
        --retry-failed), with the task's seed beside the row's."""
        recons = _rows_of(self.recons, tasks["utt_id"])
        recons = recons if not retry_failed else recons.filter(pc.equal(recons["status"], "ok"))
        return tasks.select(["utt_id", "seed", "source_id"]).join(
            recons.select(["utt_id", "seed", "params_code", "sha_code"]).rename_columns(
                ["utt_id", "done_seed", "params_code", "sha_code"]), "utt_id", join_type="inner", use_threads=False)

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

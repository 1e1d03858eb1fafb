"""`reconstruct run`: corpus listing -> plan (on disk) -> executor -> one consistent manifest + an end summary.

The driver is columnar and streams: the corpus listing is one Arrow table (no audio opened; each file
is described once, by the worker that first reads it), the plan is built in chunks of `listing.CHUNK`
corpus clips and written to OUT/.plan-<run>/ as small Parquet files that the workers read, so the
driver holds Arrow columns, never a Python object per clip, and no plan rows.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import os
import uuid
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from tqdm import tqdm

import manifests
from manifests import listing, storage, tempfiles
from manifests.corpus import list_corpus
from manifests.select import select_rows
from manifests.errors import UsageError

from . import weights
from .backends import BACKENDS
from .config import RunConfig
from .executors import run_local, run_ray
from .plan import ModelSpec, resolve_models, tasks as plan_tasks, weights_sha256
from .preflight import check_options, check_plan
from .resume import Conflict, Done
from .worker import DISK_FULL

LOST = "no row came back from the workers (no row written; a rerun makes them)"

@dataclasses.dataclass
class ModelTally:
    """Counts of one model in one run."""

    todo: int = 0        # selected clips: skipped + ok + failed
    skipped: int = 0     # finished by an earlier run (ok or failed), or whose source failed in an earlier run
    ok: int = 0          # made by this run
    failed: int = 0      # failed in this run, its source's failure included
    skipped_failed: int = 0  # of the skipped, those that failed before (their source's failure included)
    lost: int = 0        # of the failed, planned in this run but no row came back (none written: a rerun redoes them)
    audio_s: float = 0.0
    compute_s: float = 0.0
    errors: dict = dataclasses.field(default_factory=dict)

    @property
    def rtf(self) -> float:
        return self.compute_s / self.audio_s if self.audio_s else float("nan")


@dataclasses.dataclass
class RunSummary:
    out: str
    originals: int
    failed_originals: int
    tallies: dict[str, ModelTally]
    dry_run: bool = False

    @property
    def failure_rate(self) -> float:
        done = sum(t.ok + t.failed for t in self.tallies.values())
        return sum(t.failed for t in self.tallies.values()) / done if done else 0.0

    def table(self) -> str:
        head = "model                         todo  skipped     ok  failed  audio_h     rtf"
        lines = [head]
        for name, t in self.tallies.items():
            lines.append(f"{name:<28} {t.todo:>6} {t.skipped:>8} {t.ok:>6} {t.failed:>7} "
                         f"{t.audio_s / 3600:>8.3f} {t.rtf:>7.3f}")
            for err, n in sorted(t.errors.items(), key=lambda kv: -kv[1])[:3]:
                lines.append(f"    {n} x {err}")
        return "\n".join(lines)


@dataclasses.dataclass
class Plan:
    """What the plan building found: per model the plan files and counts, and the originals' counts."""

    files: dict[int, list[str]]
    originals: int = 0
    cached: int = 0               # originals whose described row is reused
    failed_originals: int = 0     # of those, failed ones (no tasks)
    to_describe: int = 0
    audio_s: float = 0.0          # duration of the reused ok originals


def _root(paths: pa.ChunkedArray) -> str:
    """The deepest folder holding every path, from the distinct parent folders (few), CHUNK paths at a time."""
    parents = set()
    for start in range(0, len(paths), listing.CHUNK):
        parents.update(pc.unique(pc.replace_substring_regex(paths.slice(start, listing.CHUNK), r"/[^/]*$", "")).to_pylist())
    return storage.common_parent(storage.join(p, "x") for p in parents)


def _source_changed(done: Done, chunk: pa.Table, reuse: pa.Table) -> None:
    """A source re-listed with another path, size or mtime, whose reconstructions OUT already holds: its
    audio must be the same (hashed now; only such sources are), else the run stops (Conflict)."""
    changed = chunk["utt_id"].filter(pc.and_(pc.and_(reuse["changed"], reuse["identified"]), reuse["has_recons"]))
    if not len(changed):
        return
    stored = _stored_sha(done.manifest_dir, changed)
    rows = chunk.filter(pc.is_in(chunk["utt_id"], value_set=changed)).select(["utt_id", "path"]).to_pylist()
    for r in rows:
        now = storage.sha256(storage.readable(r["path"])) if storage.kind(r["path"]) == storage.FILE else None
        if now != stored.get(r["utt_id"]):
            raise Conflict(f"{len(changed)} source clip(s) changed since OUT's reconstructions of them were made "
                           f"(e.g. {r['utt_id']}: sha256 {str(stored.get(r['utt_id']))[:12]}… in OUT, "
                           f"{str(now)[:12]}… now); use another --out for this corpus")


def _stored_sha(manifest_dir: str, utt_ids: pa.Array) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in manifests.part_files(manifest_dir):
        t = pq.read_table(storage.readable(part), columns=["utt_id", "kind", "sha256", "status"])
        t = t.filter(pc.and_(pc.equal(t["kind"], "original"), pc.is_in(t["utt_id"], value_set=utt_ids)))
        out.update({r["utt_id"]: r["sha256"] for r in t.to_pylist() if r["status"] == "ok"})
    return out


def build_plan(cfg: RunConfig, specs: list[ModelSpec], table: pa.Table, root: str, out: str, done: Done,
               tallies: dict, plan_dir: str | None, block_rows: int) -> Plan:
    """Write each model's pending tasks to plan_dir/spec-I/ (files of `block_rows` rows; nothing with
    plan_dir None) chunk by chunk, and count. Raises Conflict before anything is written for a finished
    clip that this run would make differently."""
    shas = [weights_sha256(s) for s in specs]
    plan = Plan({i: [] for i in range(len(specs))})
    pending_chunks: list[tuple[int, str, pa.Table]] = []  # (spec, plan file prefix, tasks)
    written: set[str] = set()
    offset = 0
    for c, chunk in enumerate(table.to_batches(max_chunksize=listing.CHUNK)):
        chunk = pa.Table.from_batches([chunk])
        rows = np.arange(offset, offset + chunk.num_rows, dtype=np.int64)
        offset += chunk.num_rows
        reuse = done.reusable(rows, cfg.retry_failed)
        _source_changed(done, chunk, reuse)
        cached = reuse["cached"]
        failed = pc.and_(cached, pc.invert(reuse["ok"]))  # described before, and failed: not reconstructed
        plan.originals += chunk.num_rows
        plan.cached += pc.sum(cached.cast(pa.int64())).as_py() or 0
        plan.failed_originals += pc.sum(failed.cast(pa.int64())).as_py() or 0
        plan.audio_s += pc.sum(pc.fill_null(reuse["duration_s"].filter(pc.and_(cached, pc.invert(failed))), 0)).as_py() or 0.0
        usable = chunk.filter(pc.invert(failed))
        usable_rows = pa.array(rows).filter(pc.invert(failed))
        need = pc.invert(cached.filter(pc.invert(failed)))
        need_ids = usable["utt_id"].filter(need).combine_chunks()
        plan.to_describe += len(need_ids)
        n_failed = len(chunk) - usable.num_rows  # sources that failed before: nothing of them to do, counted skipped
        for i, spec in enumerate(specs):
            t = plan_tasks(usable, i, spec, out, root, cfg.seed)
            finished = done.finished(t, usable_rows, i, cfg.retry_failed)
            why = done.conflicts(finished, spec.params, shas[i], spec.variant)
            if why:
                raise Conflict(f"OUT holds {why}; use another --out, or the run's original options")
            t = t.filter(pc.invert(pc.is_in(t["utt_id"], value_set=finished["utt_id"].combine_chunks())))
            tally = tallies[spec.variant]
            tally.skipped += finished.num_rows + n_failed
            tally.skipped_failed += n_failed + finished.num_rows - (pc.sum(finished["done_ok"].cast(pa.int64())).as_py() or 0)
            tally.todo += t.num_rows + finished.num_rows + n_failed
            describe = pc.is_in(t["source_id"], value_set=need_ids)
            t = t.set_column(t.schema.get_field_index("describe"), "describe", describe)
            described = t["source_id"].filter(describe).combine_chunks()
            need_ids = need_ids.filter(pc.invert(pc.is_in(need_ids, value_set=described)))
            if t.num_rows:
                pending_chunks.append((i, "c", t))
        if len(need_ids):  # to describe but nothing left to reconstruct: a describe-only task
            only = plan_tasks(usable.filter(pc.is_in(usable["utt_id"], value_set=need_ids)), 0, specs[0], out, root,
                              cfg.seed)
            only = only.set_column(only.schema.get_field_index("describe"), "describe",
                                   pa.array([True] * only.num_rows, pa.bool_()))
            only = only.set_column(only.schema.get_field_index("reconstruct"), "reconstruct",
                                   pa.array([False] * only.num_rows, pa.bool_()))
            pending_chunks.append((0, "d", only))  # spec-0's folder: a name of its own, never spec 0's tasks' one
        if plan_dir is not None:  # written chunk by chunk: the plan never sits in the driver whole
            for i, prefix, t in pending_chunks:
                for k in range(0, t.num_rows, block_rows):
                    dest = storage.join(plan_dir, f"spec-{i}", f"{prefix}{c:06d}-{k // block_rows:06d}.parquet")
                    if dest in written:  # a second file under one name would replace the first: its tasks lost
                        raise AssertionError(f"plan file {dest} written twice")
                    written.add(dest)
                    piece = t.slice(k, block_rows)
                    plan.files[i].append(storage.write_atomic(dest, lambda fh, p=piece: pq.write_table(p, fh)))
        pending_chunks = []
        listing.release_unused()
    return plan


def _preflight(specs: list[ModelSpec]) -> None:
    """Refuse, before any worker starts, a model whose weights cannot be had."""
    from .backends import get

    for s in specs:
        cls = get(s.name)
        if cls.weights_location(s.checkpoint) is None and (weights.offline() or not cls.weights):
            raise weights.not_available(s.name, cls.weights, getattr(cls, "missing_library", lambda: None)())


def run(cfg: RunConfig, echo: Callable[[str], None] = print) -> RunSummary:
    """Reconstruct every corpus clip with every selected model; resumable, never duplicates."""
    check_options(cfg)
    out = storage.normalize(cfg.out)
    manifest_dir = storage.join(out, "manifest")
    specs, notices = resolve_models(cfg.methods, cfg.models, dict(cfg.params), cfg.checkpoint, dict(cfg.grid))
    for n in notices:
        echo(n)
    table = list_corpus(cfg.corpus, cfg.audio_dir, cfg.allow_outside_root, exclude=(out,))
    root = _root(table["path"]) if cfg.select else None  # selected clips get the output paths a whole-corpus run gives
    table = select_rows(table, cfg.select)
    table = table.slice(0, cfg.limit) if cfg.limit else table
    root = root or _root(table["path"])
    check_plan(table, specs, out, list(BACKENDS))
    done = Done.read(manifest_dir, table, root, [s.variant for s in specs])
    tallies = {s.variant: ModelTally() for s in specs}
    run_id = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ-") + uuid.uuid4().hex[:8]
    plan_dir = None if cfg.dry_run else storage.join(out, f".plan-{tempfiles.owner()}-{run_id}")  # see tempfiles.sweep
    if not cfg.dry_run:
        storage.check_writable(out)
        if not storage.is_uri(out):
            tempfiles.sweep(out)  # temp files a killed run left (object stores never hold partial objects)
    try:
        # plan files of up to 16 batches, but at least ~64 of them, so that every actor gets work on a small corpus
        block = max(cfg.batch_size, min(cfg.batch_size * 16, -(-table.num_rows // 64)))
        plan = build_plan(cfg, specs, table, root, out, done, tallies, plan_dir, block)
        del table, done
        summary = RunSummary(out, plan.originals, plan.failed_originals, tallies, dry_run=cfg.dry_run)
        if cfg.dry_run:
            echo(f"plan: {plan.originals} corpus clips ({plan.cached} described before: {plan.audio_s / 3600:.3f} h; "
                 f"{plan.to_describe} to describe by the workers), {len(specs)} model(s), "
                 f"{sum(t.todo - t.skipped for t in tallies.values())} reconstructions to do")
            return summary
        jobs = [(specs[i], files) for i, files in plan.files.items() if files]
        _preflight([s for s, _ in jobs])
        if not storage.is_uri(out):  # after the checks (a refused run leaves no manifest/), before any audio:
            manifests.io.mark(manifest_dir)  # a later folder corpus around OUT leaves it out
        _execute(cfg, jobs, manifest_dir, run_id, tallies, summary)
        parts = manifests.part_files(manifest_dir) if storage.kind(manifest_dir) == storage.DIR else []
        if len(parts) > 1 or (jobs and parts):  # one part and nothing written: already compacted, not rewritten
            manifests.compact(manifest_dir)
    except OSError as e:
        if getattr(e, "errno", None) in DISK_FULL or "No space left" in str(e):
            n = sum(t.ok + t.failed for t in tallies.values())
            raise UsageError(f"disk full under {out} after {n} clips this run; free space and re-run the same "
                             "command: finished clips are kept and skipped") from None
        raise
    finally:
        if plan_dir is not None:
            storage.remove_tree(plan_dir)
    return summary


def _execute(cfg: RunConfig, jobs, manifest_dir: str, run_id: str, tallies: dict[str, "ModelTally"],
             summary: "RunSummary") -> None:
    total = sum(tallies[s.variant].todo - tallies[s.variant].skipped for s, _ in jobs)
    if not jobs:
        return
    if cfg.executor == "local":
        stream = run_local(jobs, manifest_dir, run_id, cfg.batch_size, cfg.workers, cfg.device,
                           cfg.threads_per_worker, cfg.max_duration_s)
    else:
        stream = run_ray(jobs, manifest_dir, run_id, cfg.batch_size, cfg.workers, cfg.gpus_per_worker,
                         cfg.ray_address, cfg.device, cfg.threads_per_worker, cfg.max_duration_s)
    with tqdm(total=total, unit="clip", desc="reconstruct", disable=os.environ.get("HARDSPOOF_NO_BAR") == "1") as bar:
        for rows in stream:
            bar.update(_count(rows, tallies, summary))
    for spec, _ in jobs:  # every planned task must come back ok or failed: one that did not is counted, never dropped
        t = tallies[spec.variant]
        t.lost = max(0, t.todo - t.skipped - t.ok - t.failed)
        if t.lost:
            t.failed += t.lost
            t.errors[LOST] = t.errors.get(LOST, 0) + t.lost


def _count(rows: pa.Table, tallies: dict[str, "ModelTally"], summary: "RunSummary") -> int:
    """Add a batch of a worker's rows (written ones, and unwritten failed rows of reconstructions whose source
    failed) to the tallies; returns how many reconstructions it held."""
    originals = rows.filter(pc.and_(pc.equal(rows["kind"], "original"), rows["_written"]))
    summary.failed_originals += originals.num_rows - (pc.sum(pc.equal(originals["status"], "ok").cast(pa.int64())).as_py() or 0)
    recons = rows.filter(pc.equal(rows["kind"], "reconstruction"))
    variants = {f"__{v}": v for v in tallies}
    for r in recons.select(["utt_id", "status", "error", "duration_s", "_elapsed_s"]).to_pylist():
        variant = next(v for suffix, v in variants.items() if r["utt_id"].endswith(suffix))
        t = tallies[variant]
        t.compute_s += r["_elapsed_s"]
        if r["status"] == "ok":
            t.ok += 1
            t.audio_s += r["duration_s"] or 0.0
        else:
            t.failed += 1
            key = (r["error"] or "unknown").split(":")[0]
            t.errors[key] = t.errors.get(key, 0) + 1
    return recons.num_rows

"""`reconstruct run`: corpus -> plan -> executor -> one consistent manifest + an end summary."""
from __future__ import annotations

import dataclasses
import datetime as dt
import os
import uuid
from typing import Callable

import pyarrow as pa
import pyarrow.compute as pc
from tqdm import tqdm

import manifests
from manifests import storage, tempfiles
from manifests.corpus import import_corpus
from manifests.errors import UsageError

from . import weights
from .backends import BACKENDS
from .config import RunConfig
from .executors import run_local, run_ray
from .plan import ModelSpec, build_tasks, done_ids, resolve_models
from .preflight import check_options, check_plan
from .worker import DISK_FULL, TOOLKIT_VERSION


@dataclasses.dataclass
class ModelTally:
    """Counts of one model in one run."""

    todo: int = 0
    skipped: int = 0
    ok: int = 0
    failed: int = 0
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


def _originals(cfg: RunConfig, out: str) -> tuple[list[dict], str]:
    """Corpus rows (the first --limit of them) and the corpus root that output paths mirror. A folder
    corpus never counts what is under `out` (its own reconstructions, when --out is inside --corpus)."""
    rows = import_corpus(cfg.corpus, cfg.audio_dir, cfg.allow_outside_root, exclude=(out,),
                         max_seconds=cfg.max_duration_s)
    root = storage.common_parent(r["path"] for r in rows)
    rows = rows[: cfg.limit] if cfg.limit else rows
    now = dt.datetime.now(dt.timezone.utc)
    for r in rows:
        r.update(created_at=now, toolkit_version=TOOLKIT_VERSION)
    return rows, root


def _preflight(specs: list[ModelSpec]) -> None:
    """Refuse, before any worker starts, a model whose weights cannot be had."""
    from .backends import get

    for s in specs:
        cls = get(s.name)
        if cls.weights_location(s.checkpoint) is None and (weights.offline() or not cls.weights):
            raise weights.not_available(s.name, cls.weights)


def run(cfg: RunConfig, echo: Callable[[str], None] = print) -> RunSummary:
    """Reconstruct every corpus clip with every selected model; resumable, never duplicates."""
    check_options(cfg)
    out = storage.normalize(cfg.out)
    manifest_dir = storage.join(out, "manifest")
    specs, notices = resolve_models(cfg.methods, cfg.models, dict(cfg.params), cfg.checkpoint)
    for n in notices:
        echo(n)
    originals, root = _originals(cfg, out)
    tasks = build_tasks(originals, specs, out, root, cfg.seed)
    check_plan(originals, tasks, list(BACKENDS))
    done = done_ids(manifest_dir, cfg.retry_failed)
    tallies = {s.variant: ModelTally() for s in specs}
    jobs = []
    for i, spec in enumerate(specs):
        mine = tasks.filter(pc.equal(tasks["spec"], i))
        keep = pa.array([u not in done for u in mine["utt_id"].to_pylist()], pa.bool_())
        todo = mine.filter(keep)
        tallies[spec.variant].todo, tallies[spec.variant].skipped = todo.num_rows, mine.num_rows - todo.num_rows
        if todo.num_rows:
            jobs.append((spec, todo))
    failed_originals = sum(r["status"] != "ok" for r in originals)
    summary = RunSummary(out, len(originals), failed_originals, tallies, dry_run=cfg.dry_run)
    if cfg.dry_run:
        seconds = sum(r["duration_s"] or 0 for r in originals if r["status"] == "ok")
        echo(f"plan: {len(originals)} corpus clips ({seconds / 3600:.3f} h), {len(specs)} model(s), "
             f"{sum(t.todo for t in tallies.values())} reconstructions to do "
             f"(~{seconds * len(specs) / 3600:.3f} h of audio out)")
        return summary
    storage.check_writable(out)
    if not storage.is_uri(out):
        tempfiles.sweep(out)  # temp files a killed run left (object stores never hold partial objects)
    _preflight([s for s, _ in jobs])
    run_id = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ-") + uuid.uuid4().hex[:8]
    for r in originals:
        r["run_id"] = run_id
    try:
        manifests.write_part(originals, manifest_dir, "originals")
        _execute(cfg, jobs, manifest_dir, run_id, tallies)
        manifests.compact(manifest_dir)
    except OSError as e:
        if getattr(e, "errno", None) in DISK_FULL or "No space left" in str(e):
            done = sum(t.ok + t.failed for t in tallies.values())
            raise UsageError(f"disk full under {out} after {done} clips this run; free space and re-run the same "
                             "command: finished clips are kept and skipped") from None
        raise
    return summary


def _execute(cfg: RunConfig, jobs, manifest_dir: str, run_id: str, tallies: dict[str, ModelTally]) -> None:
    total = sum(t.num_rows for _, t in jobs)
    if not total:
        return
    if cfg.executor == "local":
        stream = run_local(jobs, manifest_dir, run_id, cfg.batch_size, cfg.workers, cfg.device,
                           cfg.threads_per_worker)
    else:
        stream = run_ray(jobs, manifest_dir, run_id, cfg.batch_size, cfg.workers, cfg.gpus_per_worker,
                         cfg.ray_address, cfg.device, cfg.threads_per_worker)
    with tqdm(total=total, unit="clip", desc="reconstruct", disable=os.environ.get("HARDSPOOF_NO_BAR") == "1") as bar:
        for rows in stream:
            _count(rows, tallies, jobs)
            bar.update(rows.num_rows)


def _count(rows: pa.Table, tallies: dict[str, ModelTally], jobs) -> None:
    variants = {f"__{spec.variant}": spec.variant for spec, _ in jobs}
    for r in rows.select(["utt_id", "status", "error", "duration_s", "_elapsed_s"]).to_pylist():
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

"""The worker: loads one back-end once, turns a batch of plan rows into manifest rows.

It reads source audio from paths and writes its own output files (audio never travels
through Ray's object store). A plan row may also ask it to describe the source (header facts and
sha256: each corpus file is described once, by the first worker that reads it) and write the
original's row. Each batch's rows are written at once as a small part (nothing finished is lost
to a kill), and the worker rolls its small parts into one part of about ROLL_ROWS rows as they add up,
so a million clips make hundreds of parts, not tens of thousands. The same rows return to the driver
for its counts. One clip's failure is a `failed` row, not a crash.
"""
from __future__ import annotations

import datetime as dt
import errno
import os
import time
import uuid

import pyarrow as pa

import manifests
from manifests import listing, storage
from manifests.audio import describe, header_problem, load_audio, save_audio
from manifests.audiostream import is_long
from manifests.errors import first_line

from .hardness import snr_lsd_db
from .longclip import reconstruct_long
from .plan import ModelSpec

TOOLKIT_VERSION = manifests.__version__
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
ROLL_ROWS = 4096  # a worker merges its small per-batch parts into one part once they hold this many rows


def _reason(e: BaseException) -> str:
    return f"{type(e).__name__}: {first_line(e, '')}"[:500]


def file_identity(loc: str) -> dict:
    """file_size and file_mtime_ns of a written file (None when it cannot be asked)."""
    if storage.is_uri(loc):
        info = storage.filesystem(loc)[0].get_file_info(storage.filesystem(loc)[1])
        return {"file_size": info.size, "file_mtime_ns": info.mtime_ns}
    size, mtime, _ = listing.identity(loc)
    return {"file_size": size, "file_mtime_ns": mtime}


class ReconstructWorker:
    """Callable class for Ray Data `map_batches` (one instance per actor) or a plain loop."""

    def __init__(self, spec: ModelSpec, manifest_dir: str, run_id: str, threads: int = 1,
                 device: str = "auto", max_seconds: float | None = None, roll_rows: int = ROLL_ROWS) -> None:
        import torch

        from .backends import get

        torch.set_num_threads(max(1, threads))
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.spec = spec
        self.manifest_dir = manifest_dir
        self.run_id = run_id
        self.max_seconds, self.roll_rows = max_seconds, roll_rows
        self.backend = get(spec.name)(spec.params, checkpoint=spec.checkpoint, device=device)
        self.params_json = self.backend.params_json()
        self.worker_id = uuid.uuid4().hex[:12]
        self.small: list[str] = []   # this worker's per-batch parts not rolled yet
        self.small_rows = 0
        self.rolled = 0

    def _original(self, task: dict) -> dict:
        """The source's own row: header facts and sha256, or failed and why."""
        row = manifests.empty_row()
        row.update(utt_id=task["source_id"], path=task["src_path"], label=task["src_label"], kind="original",
                   source_id=task["source_id"], attack=task["src_attack"] or "-", speaker=task["speaker"],
                   language=task["language"], split=task["split"], file_size=task["src_size"],
                   file_mtime_ns=task["src_mtime_ns"], run_id=self.run_id, toolkit_version=TOOLKIT_VERSION,
                   status="ok")
        if task["src_problem"]:
            return dict(row, status="failed", error=task["src_problem"])
        try:
            info = describe(task["src_path"])
            row.update(info)
            problem = header_problem(storage.name(task["src_path"]), info["sample_rate"], info["num_samples"],
                                     self.max_seconds)
            if not info["num_samples"]:
                row.update(status="failed", error=f"{storage.name(task['src_path'])} has no audio samples")
            elif problem:
                row.update(status="failed", error=problem)
        except Exception as e:  # noqa: BLE001 - any reason the source cannot be read is its row's error
            row.update(status="failed", error=_reason(e))
        row["created_at"] = dt.datetime.now(dt.timezone.utc)
        return row

    def _one(self, task: dict) -> dict:
        """The reconstruction's row: ok, or failed and why (also when the source's header was fine but its
        samples cannot be used, e.g. NaN in a float WAV). A source whose header cannot be read gets no
        task here: its own row says why."""
        row = manifests.empty_row()
        row.update(utt_id=task["utt_id"], path=task["out_path"], label="spoof", kind="reconstruction",
                   source_id=task["source_id"], method=self.backend.method, model=self.backend.name,
                   params=self.params_json, checkpoint_sha256=self.backend.checkpoint_sha256,
                   seed=task["seed"], attack=task["attack"], speaker=task["speaker"],
                   language=task["language"], split=task["split"], run_id=self.run_id,
                   toolkit_version=TOOLKIT_VERSION)
        start = time.perf_counter()
        try:
            if is_long(task["src_path"]):  # streamed: memory stays bounded whatever the length
                hardness = reconstruct_long(self.backend, task["src_path"], task["out_path"], task["seed"])
            else:
                wav, sr = load_audio(task["src_path"], max_seconds=self.max_seconds)
                out = self.backend.reconstruct(wav, sr, seed=task["seed"])
                save_audio(task["out_path"], out, sr)
                snr, lsd = snr_lsd_db(wav, out, sr)
                hardness = {"snr_db": snr, "lsd_db": lsd}
                del wav, out
            row.update(describe(task["out_path"]), **file_identity(task["out_path"]), **hardness, status="ok")
        except OSError as e:
            if e.errno in DISK_FULL:  # not this clip's fault: stop the run, the next one resumes
                raise
            row.update(status="failed", error=_reason(e))
        except Exception as e:  # noqa: BLE001 - any per-clip failure becomes a failed row
            if any(s in str(e) for s in ("No space left on device", "Disk quota exceeded")):  # wrapped by a library
                raise OSError(errno.ENOSPC, f"{_reason(e)} (writing {storage.name(task['out_path'])})") from None
            row.update(status="failed", error=_reason(e))
        row["created_at"] = dt.datetime.now(dt.timezone.utc)
        row["_elapsed_s"] = time.perf_counter() - start
        return row

    def __call__(self, batch: pa.Table) -> pa.Table:
        """batch: plan rows (pyarrow) -> the manifest rows written, plus `_elapsed_s` per clip (0 for
        originals' rows), and (`_written` false) a failed reconstruction row, for the driver's counts only, for
        each task whose source could not be used."""
        rows, unmade = [], []
        for task in batch.to_pylist():
            source_ok, why = not task["src_problem"], task["src_problem"]
            if task["describe"]:
                original = dict(self._original(task), _elapsed_s=0.0)
                source_ok, why = original["status"] == "ok", original["error"]
                rows.append(original)
            if task["reconstruct"] and source_ok:
                rows.append(self._one(task))
            elif task["reconstruct"]:
                unmade.append(self._unmade(task, why))
        elapsed = [r.pop("_elapsed_s") for r in rows + unmade]
        self._write(rows)
        table = manifests.to_table(rows + unmade)
        return table.append_column("_elapsed_s", pa.array(elapsed, pa.float64())).append_column(
            "_written", pa.array([True] * len(rows) + [False] * len(unmade), pa.bool_()))

    def _unmade(self, task: dict, why: str | None) -> dict:
        """The driver's count of a reconstruction not made because its source cannot be used: a failed row that
        is returned, not written (the source's own row says why; a resume does not retry it)."""
        row = manifests.empty_row()
        row.update(utt_id=task["utt_id"], source_id=task["source_id"], kind="reconstruction", label="spoof",
                   status="failed", error=f"source failed: {why or 'unknown'}"[:500], _elapsed_s=0.0)
        return row

    def _write(self, rows: list[dict]) -> None:
        """The batch's rows as a small part now; the small parts rolled into one once they add up."""
        if not rows:
            return
        name = f"part-{self.spec.name}-{self.worker_id}-b{len(self.small):05d}"
        self.small.append(manifests.write_part(rows, self.manifest_dir, name))
        self.small_rows += len(rows)
        if self.small_rows >= self.roll_rows:
            self.roll()

    def roll(self) -> None:
        """Merge this worker's small parts into one (written first, the small ones removed after: a kill in
        between leaves rows twice, which a read deduplicates, never none). A small part that another run's
        compaction already merged (and removed) is not read again: its rows are in that merged part."""
        if len(self.small) < 2:
            self.small, self.small_rows = [], 0
            return
        import pyarrow.parquet as pq

        tables = []
        for p in self.small:
            try:
                tables.append(pq.read_table(storage.readable(p)))
            except FileNotFoundError:
                continue
        if not tables:
            self.small, self.small_rows = [], 0
            return
        table = pa.concat_tables(tables)
        dest = storage.join(self.manifest_dir, f"part-{self.spec.name}-{self.worker_id}-r{self.rolled:05d}.parquet")
        storage.write_atomic(dest, lambda fh: pq.write_table(table, fh))
        for p in self.small:
            storage.remove(p)
        self.small, self.small_rows, self.rolled = [], 0, self.rolled + 1


def cpu_threads(workers: int) -> int:
    """Torch threads per worker so that `workers` workers fill the machine's cores."""
    return max(1, (os.cpu_count() or 1) // max(1, workers))

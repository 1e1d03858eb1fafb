"""The worker: loads one back-end once, turns a batch of plan rows into manifest rows.

It reads source audio from paths and writes its own output files (audio never travels
through Ray's object store), writes the batch's rows as one manifest part, and returns the
same rows so the driver can count them. One clip's failure is a `failed` row, not a crash.
"""
from __future__ import annotations

import datetime as dt
import errno
import os
import time
import uuid

import pyarrow as pa

import manifests
from manifests.audio import describe, load_audio, save_audio
from manifests.audiostream import is_long
from manifests.errors import first_line

from .hardness import snr_lsd_db
from .longclip import reconstruct_long
from .plan import ModelSpec

TOOLKIT_VERSION = manifests.__version__
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def _reason(e: BaseException) -> str:
    return f"{type(e).__name__}: {first_line(e, '')}"[:500]


class ReconstructWorker:
    """Callable class for Ray Data `map_batches` (one instance per actor) or a plain loop."""

    def __init__(self, spec: ModelSpec, manifest_dir: str, run_id: str, threads: int = 1,
                 device: str = "auto") -> None:
        import torch

        from .backends import get

        torch.set_num_threads(max(1, threads))
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.spec = spec
        self.manifest_dir = manifest_dir
        self.run_id = run_id
        self.backend = get(spec.name)(spec.params, checkpoint=spec.checkpoint, device=device)
        self.params_json = self.backend.params_json()

    def _one(self, task: dict) -> dict:
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
                wav, sr = load_audio(task["src_path"])
                out = self.backend.reconstruct(wav, sr, seed=task["seed"])
                save_audio(task["out_path"], out, sr)
                snr, lsd = snr_lsd_db(wav, out, sr)
                hardness = {"snr_db": snr, "lsd_db": lsd}
                del wav, out
            row.update(describe(task["out_path"]), **hardness, status="ok")
        except OSError as e:
            if e.errno in DISK_FULL:  # not this clip's fault: stop the run, the next one resumes
                raise
            row.update(status="failed", error=_reason(e))
        except Exception as e:  # noqa: BLE001 - any per-clip failure becomes a failed row
            row.update(status="failed", error=_reason(e))
        row["created_at"] = dt.datetime.now(dt.timezone.utc)
        row["_elapsed_s"] = time.perf_counter() - start
        return row

    def __call__(self, batch: pa.Table) -> pa.Table:
        """batch: plan rows (pyarrow) -> the manifest rows written, plus `_elapsed_s` per clip."""
        rows = [self._one(task) for task in batch.to_pylist()]
        elapsed = [r.pop("_elapsed_s") for r in rows]
        name = f"part-{self.spec.name}-{uuid.uuid4().hex[:16]}"
        manifests.write_part(rows, self.manifest_dir, name)
        table = manifests.to_table(rows)
        return table.append_column("_elapsed_s", pa.array(elapsed, pa.float64()))


def cpu_threads(workers: int) -> int:
    """Torch threads per worker so that `workers` workers fill the machine's cores."""
    return max(1, (os.cpu_count() or 1) // max(1, workers))

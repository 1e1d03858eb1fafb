"""`detector score --executor ray`: scoring as a Ray Data stage that scales like `reconstruct run`.

The (id, path) items are cut into shards of SHARD clips; an actor pool (one detector per actor, loaded
once; `--gpus-per-worker` shares a GPU) scores a shard at a time and writes it as a small scores file
under `OUT.parts/`, by temp file and rename. A shard's file name carries a digest of its ids, paths and
the weights' sha256, so a re-run (after a kill) skips the shards already written and never reuses a
shard of other clips or another detector. The driver then joins the shards in input order into OUT
(joined back to a manifest by `id` = utt_id); `evaluate.score` removes OUT.parts/ once OUT is written.
"""
from __future__ import annotations

import hashlib
import os
from typing import Sequence

from manifests import scores_tsv

from .scorer import load_detector, score_rows

SHARD = 256


def _digest(items: Sequence[tuple[str, str]], weights_sha: str) -> str:
    h = hashlib.sha256(weights_sha.encode())
    for uid, path in items:
        h.update(f"{uid}\0{path}\0".encode())
    return h.hexdigest()[:16]


class ScoreWorker:
    """Ray Data actor: one detector, shards in, a scores file per shard out (returns the shard's counts)."""

    def __init__(self, ckpt: str, batch_size: int, max_seconds: float | None, threads: int) -> None:
        import torch

        torch.set_num_threads(max(1, threads))
        self.model, self.cfg, self.meta = load_detector(ckpt)
        self.batch_size, self.max_seconds = batch_size, max_seconds

    def __call__(self, batch):
        import pyarrow as pa

        done = []
        for shard in batch.to_pylist():
            items = list(zip(shard["ids"], shard["paths"]))
            refused = {int(k): v for k, v in zip(shard["refused_at"], shard["refused_why"])}
            columns, rows, failed = score_rows(self.model, self.cfg, self.meta, items, self.batch_size, False,
                                               self.max_seconds, refused)
            scores_tsv.write(shard["part"], float(self.meta.get("threshold", 0.0)), columns, rows)
            done.append({"part": shard["part"], "n": len(items), "failed": failed})
        return pa.Table.from_pylist(done)


def score_sharded(ckpt: str | os.PathLike, items: list[tuple[str, str]], refused: dict[int, str],
                  out: str | os.PathLike, batch_size: int, max_seconds: float | None, workers: int,
                  gpus_per_worker: float, ray_address: str | None, progress: bool,
                  sha: str | None = None) -> tuple[list[str], list, int]:
    """Score `items` in shards on Ray; returns (columns, rows in input order, failed). `sha`: the weights'
    sha256 when the caller has it already (hashed here otherwise)."""
    import ray
    import ray.data
    from tqdm import tqdm

    from manifests.raystart import forwarded_env, init_ray, quiet_ray_notices

    from ..checkpoint import weights_sha256

    ckpt = os.fspath(ckpt)
    parts_dir = f"{os.fspath(out)}.parts"
    os.makedirs(parts_dir, exist_ok=True)
    sha = sha or weights_sha256(ckpt)
    shards, todo = [], []
    for k, start in enumerate(range(0, len(items), SHARD)):
        chunk = items[start:start + SHARD]
        part = os.path.join(parts_dir, f"{k:06d}-{_digest(chunk, sha)}.tsv")
        shards.append(part)
        if not os.path.isfile(part):
            mine = {i - start: why for i, why in refused.items() if start <= i < start + SHARD}
            todo.append({"part": part, "ids": [u for u, _ in chunk], "paths": [p for _, p in chunk],
                         "refused_at": list(mine), "refused_why": list(mine.values())})
    if todo:
        started = init_ray(ray_address)
        try:
            cpus = ray.cluster_resources().get("CPU", 1)
            gpus = ray.cluster_resources().get("GPU", 0)
            if gpus_per_worker and gpus < gpus_per_worker:
                from manifests.errors import UsageError

                raise UsageError(f"--gpus-per-worker {gpus_per_worker} but the Ray cluster has {gpus:g} GPUs")
            pool = max(1, min(workers or (int(gpus // gpus_per_worker) if gpus_per_worker else int(cpus)), len(todo)))
            threads = max(1, int(cpus // pool))
            ds = ray.data.from_items(todo, override_num_blocks=len(todo)).map_batches(
                ScoreWorker, fn_constructor_kwargs=dict(ckpt=os.path.abspath(ckpt), batch_size=batch_size,
                                                        max_seconds=max_seconds, threads=threads),
                batch_size=1, batch_format="pyarrow", compute=ray.data.ActorPoolStrategy(size=pool),
                num_cpus=threads if not gpus_per_worker else 1, num_gpus=gpus_per_worker or None,
                **({} if started else {"runtime_env": {"env_vars": forwarded_env()}}))
            with tqdm(total=sum(len(t["ids"]) for t in todo), unit="clip", desc="score", disable=not progress) as bar, \
                    quiet_ray_notices():  # Ray Data's own actor handle makes Ray's core log an error per actor
                for done in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
                    bar.update(sum(done["n"].to_pylist()))
        finally:
            if started:
                ray.shutdown()
    columns, rows, failed = None, [], 0
    for part in shards:
        part_rows = scores_tsv.read(part)
        columns = columns or (list(part_rows[0]) if part_rows else None)
        rows.extend(tuple(r.values()) for r in part_rows)
        failed += sum(1 for r in part_rows if r["score"] == "")
    return columns or ["id", "path", "score", "decision", "error"], rows, failed

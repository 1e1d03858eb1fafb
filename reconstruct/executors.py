"""Two executors of one plan: Ray Data (an actor pool per model) and a plain in-process loop.

Both feed the same `ReconstructWorker` the same batches, so they write the same rows and,
for deterministic back-ends, the same audio. Ray starts (or is joined) through manifests.raystart.
"""
from __future__ import annotations

import logging
from typing import Callable, Iterator

import pyarrow as pa

from manifests.errors import UsageError
from manifests.raystart import forwarded_env, init_ray, quiet_ray_notices

from .plan import ModelSpec
from .worker import ReconstructWorker, cpu_threads

def plan_batches(files: list[str], size: int) -> Iterator[pa.Table]:
    """The plan files' rows, `size` at a time, one file in memory at a time."""
    import pyarrow.parquet as pq

    from manifests import storage

    for f in files:
        for batch in pq.ParquetFile(storage.readable(f)).iter_batches(batch_size=size):
            yield pa.Table.from_batches([batch])


def run_local(jobs: list[tuple[ModelSpec, list[str]]], manifest_dir: str, run_id: str, batch_size: int,
              workers: int, device: str, threads: int = 0, max_seconds: float | None = None) -> Iterator[pa.Table]:
    """In-process: one worker per model, the plan files' batches in order."""
    for spec, files in jobs:
        worker = ReconstructWorker(spec, manifest_dir, run_id, threads=threads or cpu_threads(workers or 1),
                                   device=device, max_seconds=max_seconds)
        for batch in plan_batches(files, batch_size):
            yield worker(batch)
        worker.roll()


def run_ray(jobs: list[tuple[ModelSpec, list[str]]], manifest_dir: str, run_id: str, batch_size: int,
            workers: int, gpus_per_worker: float, address: str | None, device: str,
            threads_per_worker: int = 0, max_seconds: float | None = None) -> Iterator[pa.Table]:
    """Ray Data: per model, the plan files (read by the workers, one block each) -> map_batches(ReconstructWorker)
    on a fixed actor pool."""
    import ray
    import ray.data

    started = init_ray(address)
    logging.getLogger("ray.data").setLevel(logging.ERROR)  # the driver reports progress itself
    try:
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False  # the driver draws its own bar
        ctx.print_on_execution_start = False
        cpus = ray.cluster_resources().get("CPU", 1)
        gpus = ray.cluster_resources().get("GPU", 0)
        node_cpus = int(min((n["Resources"].get("CPU", 1) for n in ray.nodes() if n.get("Alive")), default=1))
        if gpus_per_worker and gpus < gpus_per_worker:
            raise UsageError(f"--gpus-per-worker {gpus_per_worker} but the Ray cluster has {gpus:g} GPUs; "
                             "drop the flag to run on CPUs")
        for spec, files in jobs:
            default = int(gpus // gpus_per_worker) if gpus_per_worker else int(cpus)
            pool = max(1, min(workers or default, len(files)))
            threads = threads_per_worker or max(1, min(int(cpus // pool), node_cpus))  # an actor fits on one node
            # The dataset is the plan files' names; each actor reads the files it is given. (Ray Data's
            # read_parquet would need a CPU slot for its listing and read tasks, which an actor pool holding
            # every slot starves: the run would hang.)
            ds = ray.data.from_items([{"plan_file": f} for f in files], override_num_blocks=len(files)).map_batches(
                PlanFileWorker,
                fn_constructor_kwargs=dict(batch_size=batch_size, spec=spec, manifest_dir=manifest_dir, run_id=run_id,
                                           threads=threads, device=device, max_seconds=max_seconds),
                batch_size=1,
                batch_format="pyarrow",
                compute=ray.data.ActorPoolStrategy(size=pool),
                num_cpus=threads if not gpus_per_worker else 1,
                num_gpus=gpus_per_worker or None,
                # Ray started by ray.init() above already carries the env; one started earlier may not
                **({} if started else {"runtime_env": {"env_vars": forwarded_env()}}),
            )
            with quiet_ray_notices():  # Ray Data's own actor handle makes Ray's core log an error per actor
                yield from ds.iter_batches(batch_size=None, batch_format="pyarrow")
    finally:
        if started:
            ray.shutdown()


class PlanFileWorker:
    """Ray Data actor over plan file names: reads each file and feeds its rows to one `ReconstructWorker`,
    `batch_size` rows at a time, as the local executor does."""

    def __init__(self, batch_size: int, **worker_kwargs) -> None:
        self.batch_size = batch_size
        self.worker = ReconstructWorker(**worker_kwargs)

    def __call__(self, batch: pa.Table) -> pa.Table:
        out = [self.worker(b) for b in plan_batches(batch["plan_file"].to_pylist(), self.batch_size)]
        if not out:
            import manifests

            return manifests.to_table([]).append_column("_elapsed_s", pa.array([], pa.float64())).append_column(
                "_written", pa.array([], pa.bool_()))
        return pa.concat_tables(out)


def executor(name: str) -> Callable[..., Iterator[pa.Table]]:
    """'ray' or 'local'."""
    if name not in ("ray", "local"):
        raise UsageError(f"unknown executor {name!r}; choose ray or local")
    return run_ray if name == "ray" else run_local

"""The run configuration: one frozen dataclass, the CLI options are its fields."""
from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True)
class RunConfig:
    corpus: str                                  # 'demo', a folder of audio, a CSV/TSV/Parquet, or an ASVspoof protocol
    out: str                                     # output folder: out/manifest/ (Parquet parts) and out/audio/
    methods: tuple[str, ...] = ()                # paradigms: codec, vocoder, diffusion
    models: tuple[str, ...] = ()                 # back-end names; a method without one gets its default
    params: tuple[tuple[str, Any], ...] = ()     # back-end parameters, applied to every model that has them
    grid: tuple[tuple[str, tuple[Any, ...]], ...] = ()  # parameter -> values: one variant per combination
    checkpoint: str | None = None                # weights folder/file for the (single) model
    audio_dir: str | None = None                 # audio folder of an ASVspoof protocol corpus
    executor: str = "ray"                        # ray | local (in-process, same output)
    workers: int = 0                             # actors per model; 0 = one per CPU (or per GPU)
    gpus_per_worker: float = 0.0                 # GPUs per actor, fractional allowed
    threads_per_worker: int = 0                  # torch threads per worker; 0 = share the cores out
    batch_size: int = 16                         # clips per worker call (and per manifest part)
    ray_address: str | None = None               # join a cluster: 'auto' or 'ray://host:10001'
    seed: int = 0                                # run seed; each clip's seed derives from it
    select: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (column, values): keep clips whose column is a value; AND
    limit: int | None = None                     # only the first N corpus clips (after `select`)
    retry_failed: bool = False                   # redo clips whose earlier row is `failed`
    dry_run: bool = False                        # print the plan, load no model
    max_failure_rate: float = 0.05               # above it the run exits 1
    allow_outside_root: bool = False             # accept protocol paths outside the corpus folder
    device: str = "auto"                         # cpu | cuda | auto (cuda when the worker has a GPU)
    max_duration_s: float = 4 * 3600.0           # longer clips (as their header declares) are failed rows

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

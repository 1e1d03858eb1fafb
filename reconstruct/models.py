"""Library behind `reconstruct models list|pull|verify` and `reconstruct bench`.

Weights live in the model store (see `weights.py`): one folder per back-end, with the
`hardspoof-weights.json` sha256 record written at pull time. The benchmark measures the
real-time factor of each back-end on this machine; where pretrained weights are absent it
builds the same model class with the published configuration and random weights (the speed
is the same, the audio is not) and says so in its `weights` column.
"""
from __future__ import annotations

import dataclasses
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from manifests.errors import UsageError

from . import weights as W
from .backends import BACKENDS, available, get


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    name: str
    method: str
    sample_rate: int
    source: str        # hub id / URL, "-" for weight-free back-ends
    offline: str       # store path, "bundled", "weight-free", or "no"
    description: str


def list_models(method: str | None = None) -> list[ModelInfo]:
    """Every registered back-end (optionally one paradigm) and whether its weights are here."""
    rows = []
    for name in available(method):
        cls = BACKENDS[name]
        where = cls.weights_location()
        offline = {"store": str(W.store_dir() / name), None: "no"}.get(where, where)
        rows.append(ModelInfo(name, cls.method, cls.sample_rate, cls.weights or "-", offline, cls.description))
    return rows


def pull(name: str, force: bool = False) -> Path:
    """Download `name`'s weights into the store (online machines only) and record their sha256."""
    cls = get(name)
    if not cls.weights:
        raise UsageError(f"{name} has no pretrained weights to pull (it is weight-free or trained by `reconstruct fit`)")
    if W.offline():
        raise UsageError(f"cannot pull {name} ({cls.weights}): offline mode is set "
                         "(unset HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE / HARDSPOOF_OFFLINE)")
    return W.pull(name, cls.weights, getattr(cls, "allow_patterns", None), force=force)


def verify(names: list[str] | None = None) -> dict[str, list[str]]:
    """Problems per staged model (re-hashed against its pull-time record); [] = verified.

    With no names, every back-end with a store folder is checked.
    """
    if names:
        for n in names:
            get(n)
            if W.local_path(n) is None:
                raise UsageError(f"{n} is not in the model store {W.store_dir()}; run `reconstruct models pull {n}`")
    else:
        names = [n for n in available() if BACKENDS[n].weights and W.local_path(n) is not None]
    return {n: W.verify(W.store_dir() / n) for n in names}


def bench_audio(seconds: float, sr: int = 16000) -> np.ndarray:
    """Deterministic speech-like test signal: a gliding harmonic voice, syllable envelope, light noise."""
    t = np.arange(int(seconds * sr)) / sr
    phase = 2 * np.pi * np.cumsum(130 * (1 + 0.1 * np.sin(2 * np.pi * 0.7 * t))) / sr
    x = sum(np.sin(k * phase) / k for k in range(1, 12)) * (0.5 + 0.5 * np.sin(2 * np.pi * 3.5 * t) ** 2)
    x += 0.02 * np.random.default_rng(0).standard_normal(t.shape)
    return (0.4 * x / np.abs(x).max()).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class BenchRow:
    model: str
    method: str
    sample_rate: int
    weights: str       # pretrained | random-init (published config) | weight-free | bundled | skipped: why
    params: str
    load_s: float
    rtf_median: float  # processing seconds per second of audio (lower is faster; < 1 = faster than real time)
    rtf_min: float
    runs: int


def bench(method: str | None = None, models: list[str] | None = None, seconds: float = 4.0, repeats: int = 3,
          threads: int | None = None, device: str = "cpu", echo=lambda s: None) -> list[BenchRow]:
    """Real-time factor of each selected back-end on a `seconds`-long 16 kHz clip (median of `repeats`)."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    if repeats < 1 or seconds <= 0:
        raise UsageError(f"need --repeats >= 1 and --seconds > 0, got {repeats}, {seconds}")
    names = list(models) if models else available(method)
    if not names:
        raise UsageError(f"no back-end with method {method!r}; methods: codec, vocoder, diffusion")
    wav = bench_audio(seconds)
    rows = []
    for name in names:
        cls = get(name)
        echo(f"bench {name} ...")
        with tempfile.TemporaryDirectory(prefix="hardspoof-bench-") as tmp:
            where, checkpoint = cls.weights_location(), None
            if where is None:
                if not hasattr(cls, "random_weights"):
                    rows.append(BenchRow(name, cls.method, cls.sample_rate, "skipped: no weights", "-", 0, 0, 0, 0))
                    continue
                checkpoint = cls.random_weights(Path(tmp) / name)
                where = "random-init (published config)"
            elif where in ("store", "checkpoint"):
                where = "pretrained"
            start = time.perf_counter()
            backend = cls(checkpoint=checkpoint, device=device)
            load_s = time.perf_counter() - start
            backend.reconstruct(wav[:16000], 16000, seed=0)  # warm-up: lazy init, allocator, caches
            times = []
            for i in range(repeats):
                start = time.perf_counter()
                backend.reconstruct(wav, 16000, seed=i)
                times.append(time.perf_counter() - start)
        rows.append(BenchRow(name, cls.method, cls.sample_rate, where, backend.params_json(), round(load_s, 2),
                             round(statistics.median(times) / seconds, 4), round(min(times) / seconds, 4), repeats))
        del backend
    return rows


def format_table(rows: list[BenchRow]) -> str:
    """Markdown table of bench rows."""
    out = ["| model | method | rate | weights | load s | RTF median | RTF min | params |",
           "|---|---|---:|---|---:|---:|---:|---|"]
    out += [f"| {r.model} | {r.method} | {r.sample_rate} | {r.weights} | {r.load_s:.2f} | {r.rtf_median:.3f} | "
            f"{r.rtf_min:.3f} | `{r.params}` |" for r in rows]
    return "\n".join(out)

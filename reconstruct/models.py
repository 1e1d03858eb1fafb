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
        try:
            where = cls.weights_location()
        except UsageError as e:  # a staged folder with a missing or mismatched file
            where = f"unusable: {e}"
        offline = {"store": str(W.store_dir() / name), None: "no"}.get(where, where)
        if getattr(cls, "missing_library", lambda: None)():
            offline += " (its package is not installed)"
        rows.append(ModelInfo(name, cls.method, cls.sample_rate, cls.weights or "-", offline, cls.description))
    return rows


def list_variants(methods: tuple[str, ...], models: tuple[str, ...], params: dict, checkpoint: str | None,
                  grid: dict | None = None) -> list[dict]:
    """The model variants `reconstruct run` makes with these options (paradigm defaults resolved as it
    resolves them): variant name (the utt_id suffix and audio folder), model, method, all parameters."""
    from .plan import resolve_models

    specs, _ = resolve_models(methods, models, params, checkpoint, grid)
    return [{"variant": s.variant, "model": s.name, "method": s.method, "params": s.params} for s in specs]


def pull(name: str, force: bool = False) -> Path:
    """Download `name`'s weights into the store (online machines only) and record their sha256."""
    cls = get(name)
    if not cls.weights:
        raise UsageError(f"{name} has no pretrained weights to pull (it is weight-free or trained by `reconstruct fit`)")
    if W.offline():
        raise UsageError(f"cannot pull {name} ({cls.weights}): offline mode is set "
                         "(unset HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE / HARDSPOOF_OFFLINE)")
    for other in getattr(cls, "also_pull", ()):  # weights it loads from another model's store entry
        pull(other, force=force)
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
    raw_rtf_median: float | None = None  # the library's own call on the same clip at the model's rate, same run
    overhead_pct: float | None = None    # back-end / raw - 1, in %: median of adjacent pairs (CPU time on a CPU)
    rtf_cpu_median: float | None = None  # as rtf_median and raw_rtf_median, in CPU seconds of this process
    raw_rtf_cpu_median: float | None = None  # (robust to other jobs on a shared machine; = wall at 1 thread idle)


def bench(method: str | None = None, models: list[str] | None = None, seconds: float = 4.0, repeats: int = 3,
          threads: int | None = None, device: str = "cpu", echo=lambda s: None,
          params: dict[str, str] | None = None) -> list[BenchRow]:
    """Real-time factor of each selected back-end on a `seconds`-long 16 kHz clip (median of `repeats`).

    A back-end with a `raw(wav)` method (the library's own call, nothing else) is also timed that way on
    the same clip, resampled beforehand to the model's rate, in adjacent pairs with the back-end runs, so
    the wrapper's overhead (resampling, length fix, checks) is measured side by side. `params` go to every
    selected back-end that has them (e.g. {"ddim_steps": "10"})."""
    import torch

    if not 1 <= repeats <= 1000 or not 0 < seconds <= 3600:
        raise UsageError(f"need --repeats in [1, 1000] and --seconds in (0, 3600], got {repeats}, {seconds}")
    if threads is not None and not 1 <= threads <= 1024:
        raise UsageError(f"--threads must be in [1, 1024], got {threads}")
    from .preflight import check_device

    check_device(device)
    if threads:
        torch.set_num_threads(threads)
    names = list(models) if models else available(method)
    if not names:
        raise UsageError(f"no back-end with method {method!r}; methods: codec, vocoder, diffusion")
    wav = bench_audio(seconds)
    rows = []
    for name in names:
        cls = get(name)
        echo(f"bench {name} ...")
        own = {k: v for k, v in (params or {}).items() if k in {f.name for f in dataclasses.fields(cls.Params)}}
        with tempfile.TemporaryDirectory(prefix="hardspoof-bench-") as tmp:
            try:
                where, checkpoint = cls.weights_location(), None
                if where is None and hasattr(cls, "random_weights"):
                    checkpoint, where = cls.random_weights(Path(tmp) / name), "random-init (published config)"
                elif where in ("store", "checkpoint"):
                    where = "pretrained"
                if where is None:
                    raise UsageError("no weights")
                start = time.perf_counter()
                backend = cls(own, checkpoint=checkpoint, device=device)
                load_s = time.perf_counter() - start
            except UsageError as e:  # no weights, or its library is not installed
                rows.append(BenchRow(name, cls.method, cls.sample_rate, f"skipped: {e}", "-", 0, 0, 0, 0))
                continue
            runs, raw_runs = _time(backend, wav, repeats, device)
        times = [wall for wall, _ in runs]
        raw = statistics.median(wall for wall, _ in raw_runs) if raw_runs else None
        # overhead: on a CPU the process's CPU time (other people's jobs on a shared machine do not count), on a
        # GPU wall time; the median over adjacent pairs
        pick = 0 if torch.device(device).type == "cuda" else 1
        ratio = statistics.median(b[pick] / r[pick] for b, r in zip(runs, raw_runs)) if raw_runs else None
        rows.append(BenchRow(name, cls.method, cls.sample_rate, where, backend.params_json(), round(load_s, 2),
                             round(statistics.median(times) / seconds, 4), round(min(times) / seconds, 4), repeats,
                             None if raw is None else round(raw / seconds, 4),
                             None if ratio is None else round(100 * (ratio - 1), 1),
                             round(statistics.median(cpu for _, cpu in runs) / seconds, 4),
                             round(statistics.median(cpu for _, cpu in raw_runs) / seconds, 4) if raw_runs else None))
        del backend
    return rows


def _time(backend, wav: np.ndarray, repeats: int, device: str) -> tuple[list[tuple[float, float]], list]:
    """(wall, process CPU) seconds per run through `reconstruct` (16 kHz in and out) and through `raw` (same
    clip, already at the model's rate), run in adjacent pairs whose order alternates."""
    import torch

    from manifests.audio import resample

    raw = getattr(backend, "raw", None)
    inner = torch.from_numpy(resample(wav, 16000, backend.sample_rate)).to(backend.device)
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)

    def through_backend(i: int) -> None:
        backend.reconstruct(wav, 16000, seed=i)

    def through_raw(i: int) -> None:
        with torch.inference_mode():
            raw(inner)
        sync()

    runs = {through_backend: [], through_raw: []} if raw is not None else {through_backend: []}
    for run in runs:  # warm-up on the same clip: lazy init, allocator, caches
        run(0)
    for i in range(repeats):
        for run in (list(runs) if i % 2 == 0 else list(runs)[::-1]):
            wall, cpu = time.perf_counter(), time.process_time()
            run(i)
            runs[run].append((time.perf_counter() - wall, time.process_time() - cpu))
    return runs[through_backend], runs.get(through_raw, [])


def format_table(rows: list[BenchRow]) -> str:
    """Markdown table of bench rows."""
    out = ["| model | method | rate | weights | load s | RTF median | RTF min | raw RTF | overhead | params |",
           "|---|---|---:|---|---:|---:|---:|---:|---:|---|"]
    out += [f"| {r.model} | {r.method} | {r.sample_rate} | {r.weights} | {r.load_s:.2f} | {r.rtf_median:.3f} | "
            f"{r.rtf_min:.3f} | {'-' if r.raw_rtf_median is None else f'{r.raw_rtf_median:.3f}'} | "
            f"{'-' if r.overhead_pct is None else f'{r.overhead_pct:+.1f} %'} | `{r.params}` |" for r in rows]
    return "\n".join(out)

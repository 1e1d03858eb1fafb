"""Ray stage vs a plain loop at equal workers, 1 vs 2 Ray workers, and driver memory.

Usage:
  python benchmarks/bench_ray.py --corpus ../shared/data/dev-corpus --clips 240 --repeats 3
  python benchmarks/bench_ray.py --memory --clips 2000      # generated 0.5 s clips; driver peak RSS

Prints clips/s medians over --repeats for: a plain loop calling the same back-end in one
process (load, reconstruct, save: nothing else), the whole `reconstruct run` in-process
(`--executor local`: the same worker Ray runs, with per-clip hashing, SNR/LSD and manifest
parts, but no Ray), and the Ray stage with 1 and with 2 workers; every worker has 1 torch
thread. Ray is started once, before timing; each timed run of `reconstruct run` is the whole
command (corpus import with hashing, actor start-up, model loading, manifest parts, compaction).
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HARDSPOOF_NO_BAR", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

from manifests.audio import load_audio, save_audio  # noqa: E402
from manifests.corpus import import_corpus  # noqa: E402
from reconstruct.backends import get  # noqa: E402
from reconstruct.config import RunConfig  # noqa: E402
from reconstruct.run import run  # noqa: E402

MODEL, PARAMS = "griffinlim", (("n_iter", 32),)


def plain_loop(paths: list[str], out: Path) -> float:
    import torch

    torch.set_num_threads(1)
    start = time.perf_counter()
    backend = get(MODEL)(dict(PARAMS))
    for i, p in enumerate(paths):
        wav, sr = load_audio(p)
        save_audio(out / f"{i}.flac", backend.reconstruct(wav, sr, seed=i), sr)
    return time.perf_counter() - start


def ray_run(corpus: str, limit: int, out: Path, workers: int, batch_size: int = 8, executor: str = "ray") -> float:
    cfg = RunConfig(corpus=corpus, out=str(out), models=(MODEL,), params=PARAMS, executor=executor,
                    workers=workers, threads_per_worker=1, batch_size=batch_size, limit=limit)
    start = time.perf_counter()
    run(cfg, echo=lambda s: None)
    return time.perf_counter() - start


def generated_corpus(root: Path, n: int, seconds: float) -> Path:
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * 16000)) / 16000
    for i in range(n):
        x = 0.3 * np.sin(2 * np.pi * (100 + i % 200) * t) + 0.01 * rng.standard_normal(t.shape)
        sf.write(root / f"c{i:05d}.flac", x.astype(np.float32), 16000)
    return root


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", help="corpus for the throughput runs (default: generated 3 s clips)")
    ap.add_argument("--clips", type=int, default=240)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=8, help="clips per Ray task (and manifest part)")
    ap.add_argument("--memory", action="store_true", help="only measure driver peak RSS on --clips clips")
    args = ap.parse_args()
    import ray

    tmp = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    try:
        corpus = args.corpus
        if corpus is None or args.memory:
            (tmp / "corpus").mkdir()
            corpus = str(generated_corpus(tmp / "corpus", args.clips, 0.5 if args.memory else 3.0))
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
        if args.memory:
            before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            seconds = ray_run(corpus, args.clips, tmp / "mem", workers=2)
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(f"{args.clips} clips with Ray (2 workers) in {seconds:.1f} s; driver peak RSS {peak:.0f} MiB "
                  f"(before the run {before:.0f} MiB)")
            return
        paths = [r["path"] for r in import_corpus(corpus) if r["status"] == "ok"][: args.clips]
        audio_s = sum(sf.info(p).duration for p in paths)
        results: dict[str, list[float]] = {"plain loop, 1 thread": [], "run --executor local": [],
                                           "ray, 1 worker": [], "ray, 2 workers": []}
        for rep in range(args.repeats):  # interleaved, so drift in machine load hits every mode alike
            for name in results:
                out = tmp / f"{name.replace(' ', '').replace(',', '-')}-{rep}"
                out.mkdir(parents=True)
                if name.startswith("plain"):
                    results[name].append(plain_loop(paths, out))
                elif "local" in name:
                    results[name].append(ray_run(corpus, len(paths), out, 1, args.batch_size, executor="local"))
                else:
                    results[name].append(ray_run(corpus, len(paths), out, int(name.split()[1]), args.batch_size))
                shutil.rmtree(out)
        print(f"{len(paths)} clips, {audio_s / 60:.1f} min of audio, back-end {MODEL} {dict(PARAMS)}, "
              f"{os.cpu_count()} CPUs, batch size {args.batch_size}, medians of {args.repeats}")
        med = {k: statistics.median(v) for k, v in results.items()}
        for k, v in med.items():
            print(f"  {k:<24} {v:7.1f} s   {len(paths) / v:6.2f} clips/s   runs: {', '.join(f'{x:.1f}' for x in results[k])}")
        loop, local, ray1 = med["plain loop, 1 thread"], med["run --executor local"], med["ray, 1 worker"]
        print(f"  ray overhead at 1 worker vs plain loop: {100 * (ray1 / loop - 1):+.1f}%")
        print(f"  ray overhead at 1 worker vs the same run without ray (--executor local): {100 * (ray1 / local - 1):+.1f}%")
        print(f"  run --executor local vs plain loop (hashing, SNR/LSD, manifest): {100 * (local / loop - 1):+.1f}%")
        print(f"  speed-up 2 vs 1 ray workers: {med['ray, 1 worker'] / med['ray, 2 workers']:.2f}x")
    finally:
        if ray.is_initialized():
            ray.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

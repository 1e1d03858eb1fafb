"""Peak memory of the training driver against the size of its manifest (a script that prints numbers, not a test).

  .venv/bin/python benchmarks/bench_train_rows.py --rows 1000000 [--rows 100000 ...] [--work DIR] [--frontend lfcc]

For each size, writes a manifest of that many rows (30 % bona fide originals, 20 % corpus spoofs of six
attacks, 50 % reconstructions of the bona fide originals in two variants, 1,000 speakers; 2,000 originals
in the dev split (every fifth original of a small one), so that validation, which reads audio, stays short;
every path points at one of eight 0.6 s files, since what is measured is the table, not the audio), then runs

  detector train --manifest M --out RUN --frontend tiny --backend linear --crop 8000 --batch-size 4
                 --epochs 1 --max-steps 3 --no-augment --no-progress --fresh

in a child process and prints its peak resident set size (ru_maxrss via RUSAGE_CHILDREN), the peak per
manifest row, the manifest's size on disk and the wall time. Python, torch and the tiny model alone (the
smallest size) are the fixed part; the growth between two sizes is what the clip table costs per row.

With --stages it runs the driver's steps before the first batch in one process instead (imports, the
content check `manifests validate` also makes, reading the clips, splits, the paired sampler and its
epoch plan) and prints each one's RSS before and after and its peak (polled every 5 ms). There torch is
loaded first; `detector train` makes the content check before it loads torch.
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import manifests  # noqa: E402
from manifests.schema import SCHEMA  # noqa: E402

N_FILES, N_SPEAKERS, N_DEV, ATTACKS = 8, 1000, 2000, ("A01", "A02", "A03", "A04", "A05", "A06")


def write_manifest(folder: Path, rows: int) -> Path:
    """A manifest of `rows` rows as described in the module docstring -> folder/m.parquet."""
    audio = folder / "audio"
    audio.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for k in range(N_FILES):
        t = np.arange(9600) / 16000
        tone = 0.1 * np.sin(2 * np.pi * (120 + 40 * k) * t) + 0.01 * rng.standard_normal(t.shape)
        sf.write(audio / f"{k}.wav", tone.astype(np.float32), 16000)
    n_bona, n_spoof = int(rows * 0.3), int(rows * 0.2)
    n_orig = n_bona + n_spoof
    n_rec = rows - n_orig
    orig_ids = np.array([f"spk{k % N_SPEAKERS:04d}/utt{k:08d}" for k in range(n_orig)], dtype=object)
    src = np.arange(n_rec) % n_bona  # reconstructions of the bona fide originals, round robin
    variant = np.arange(n_rec) // n_bona % 2
    rec_ids = np.array([f"{orig_ids[s]}__{'encodec' if v == 0 else 'hifigan'}" for s, v in zip(src, variant)],
                       dtype=object)
    is_bona = np.arange(n_orig) < n_bona
    orig_split = np.where((np.arange(n_orig) % max(n_orig // N_DEV, 5)) == 0, "dev", "train")
    cols = {
        "utt_id": np.concatenate([orig_ids, rec_ids]),
        "path": np.array([f"audio/{k % N_FILES}.wav" for k in range(rows)], dtype=object),
        "label": np.concatenate([np.where(is_bona, "bonafide", "spoof"), np.full(n_rec, "spoof")]),
        "kind": np.concatenate([np.full(n_orig, "original"), np.full(n_rec, "reconstruction")]),
        "source_id": np.concatenate([orig_ids, orig_ids[src]]),
        "method": np.concatenate([np.full(n_orig, None), np.where(variant == 0, "codec", "vocoder")]),
        "model": np.concatenate([np.full(n_orig, None), np.where(variant == 0, "encodec-24khz", "hifigan-16k")]),
        "attack": np.concatenate([np.where(is_bona, "-", np.array(ATTACKS)[np.arange(n_orig) % len(ATTACKS)]),
                                  np.full(n_rec, "-")]),
        "speaker": np.concatenate([np.array([f"spk{k % N_SPEAKERS:04d}" for k in range(n_orig)]),
                                   np.array([f"spk{s % N_SPEAKERS:04d}" for s in src])]),
        "split": np.concatenate([orig_split, orig_split[src]]),
        "sample_rate": np.full(rows, 16000, np.int32),
        "num_samples": np.full(rows, 9600, np.int64),
        "duration_s": np.full(rows, 0.6, np.float32),
        "status": np.full(rows, "ok"),
    }
    table = pa.table({k: pa.array(v, SCHEMA.field(k).type) for k, v in cols.items()})
    return Path(manifests.write(table, folder / "m.parquet"))


def peak_of_train(manifest: Path, out: Path, frontend: str = "tiny") -> tuple[int, float, str]:
    """(peak RSS of `detector train` in bytes, wall seconds, its last output line)."""
    code = ("import resource, sys; from detector.cli import main; sys.argv = ['detector'] + sys.argv[1:]\n"
            "try:\n    main()\nfinally:\n"
            "    print('peak_kib', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)")
    args = ["train", "--manifest", str(manifest), "--out", str(out), "--frontend", frontend, "--backend", "linear",
            "--crop", "8000", "--batch-size", "4", "--epochs", "1", "--max-steps", "3", "--no-augment", "--no-progress",
            "--fresh"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    t0 = time.time()
    r = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.time() - t0
    if r.returncode != 0:
        raise SystemExit(f"detector train failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    peak = next(int(ln.split()[1]) for ln in r.stderr.splitlines() if ln.startswith("peak_kib"))
    return peak * 1024, wall, r.stdout.strip().splitlines()[-1]


def stages(manifest: Path) -> None:
    """RSS before/after and peak of each driver step before the first batch, in this process."""
    import threading

    import psutil

    proc, peak = psutil.Process(), [0]

    def poll() -> None:
        while True:
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.005)

    threading.Thread(target=poll, daemon=True).start()
    mib = 2 ** 20

    def step(name: str, fn):
        before, peak[0], t0 = proc.memory_info().rss, 0, time.time()
        result = fn()
        time.sleep(0.01)
        print(f"{name:<26} {before / mib:>8.0f} {proc.memory_info().rss / mib:>8.0f} {peak[0] / mib:>8.0f} "
              f"{time.time() - t0:>8.1f}", flush=True)
        return result

    print(f"{'step':<26} {'before':>8} {'after':>8} {'peak':>8} {'seconds':>8}  (MiB)")

    def imports():
        import torch

        torch.set_num_threads(1)
        from detector.training import loop

        return loop

    loop = step("imports (torch, detector)", imports)
    from detector.config import RunConfig
    from detector.training import data
    from detector.training.sampler import PairedBatchSampler

    cfg = RunConfig().replace("data", batch_size=4, crop=8000, augment=False)
    step("content check", lambda: data.check_content([str(manifest)]))
    clips = step("load_clips", lambda: data.load_clips([str(manifest)]))
    del clips
    train, dev, _ = step("split_clips (all of it)", lambda: loop.split_clips([str(manifest)], cfg))
    sampler = step("PairedBatchSampler", lambda: PairedBatchSampler(train, 4))
    step("epoch plan", lambda: sampler.epoch_stats())
    print(f"{len(train):,} train and {len(dev):,} dev clips")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, action="append", help="manifest rows (repeatable) [1000000]")
    ap.add_argument("--work", help="folder for the manifests and runs [a temporary one]")
    ap.add_argument("--frontend", default="tiny", help="front-end of the trained model [tiny: transformers' "
                    "Wav2Vec2Model; lfcc imports no transformers]")
    ap.add_argument("--stages", action="store_true", help="per-step memory in one process (first --rows only)")
    ap.add_argument("--stages-of", help=argparse.SUPPRESS)
    a = ap.parse_args()
    work = Path(a.work) if a.work else Path(tempfile.mkdtemp(prefix="bench-train-rows-"))
    if a.stages_of:
        stages(Path(a.stages_of))
        return
    if a.stages:  # in a fresh process: writing the manifest here would be counted
        rows = (a.rows or [1_000_000])[0]
        manifest = write_manifest(work / f"rows-{rows}", rows)
        env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
        subprocess.run([sys.executable, __file__, "--stages-of", str(manifest)], env=env, check=True)
        return
    mib = 2 ** 20
    print(f"{'rows':>10} {'manifest MiB':>12} {'peak MiB':>9} {'KiB/row':>8} {'seconds':>8}")
    for rows in a.rows or [1_000_000]:
        folder = work / f"rows-{rows}"
        manifest = write_manifest(folder, rows)
        peak, wall, _ = peak_of_train(manifest, folder / "run", a.frontend)
        print(f"{rows:>10,} {manifest.stat().st_size / mib:>12.1f} {peak / mib:>9.0f} {peak / 1024 / rows:>8.3f} "
              f"{wall:>8.1f}", flush=True)


if __name__ == "__main__":
    main()

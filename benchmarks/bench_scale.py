"""Driver scale on this machine (a script that prints numbers, not a test).

  .venv/bin/python benchmarks/bench_scale.py --clips 20000 --clips 100000 [--work DIR] [--model vorbis]

For each N it builds a synthetic corpus of N short FLAC clips (0.25 s of speech-like audio, 1,000 per
folder; every clip the same bytes, which no stage depends on) and times, each as its own process:

  1. `manifests import` (reads and hashes every file: the one stage that must),
  2. `reconstruct run --dry-run` on an empty --out (listing and plan only),
  3. `reconstruct run` (--executor ray, 2 workers),
  4. the same `reconstruct run` again: a resume with nothing to do,
  5. `reconstruct run --dry-run` again, over the finished manifest.

`--again N` times only 4 and 5, over the finished run an earlier `--clips N --work DIR` left in DIR.

Each line gives wall seconds and two peak RSS of that process alone (polled every 20 ms; Ray's own
processes are not counted): `work`, until the command printed its last line (its result), and `peak`,
of the whole process, which adds the interpreter's teardown (unloading torch lifts RSS by ~120 MiB for a
moment, at any corpus size, so below ~500,000 clips that fixed moment is the whole-process peak and hides
the growth). The last lines give the driver's growth per clip between the smallest and the largest N, by
both peaks, and the run's time per clip relative to the smallest N.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.conftest import speechlike  # noqa: E402


def build_corpus(root: Path, n: int, seconds: float) -> None:
    clip = root.parent / f"clip-{seconds}.flac"
    if not clip.exists():
        sf.write(clip, speechlike(seconds, seed=0).astype(np.float32), 16000)
    data = clip.read_bytes()
    for i in range(n):
        folder = root / f"{i // 1000:05d}"
        if i % 1000 == 0:
            folder.mkdir(parents=True, exist_ok=True)
        (folder / f"c{i:07d}.flac").write_bytes(data)


def measure(cmd: list[str]) -> tuple[float, float, float, int]:
    """(wall s, peak RSS MiB of the process itself until it printed its last line, peak RSS MiB of the whole
    process, exit code). The first is the driver's work; the second adds the interpreter's teardown, where
    unloading torch alone lifts RSS by ~120 MiB for a moment at any corpus size."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", HARDSPOOF_NO_BAR="1", PYTHONPATH=str(REPO))
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ps, peak, at_last_line = psutil.Process(proc.pid), [0], [None]

    def follow_stdout() -> None:  # the peak so far, each time the command prints a line
        for _ in proc.stdout:
            at_last_line[0] = max(peak[0], ps_rss())

    def ps_rss() -> int:
        try:
            return ps.memory_info().rss
        except psutil.NoSuchProcess:
            return 0

    reader = threading.Thread(target=follow_stdout, daemon=True)
    reader.start()
    while proc.poll() is None:
        peak[0] = max(peak[0], ps_rss())
        time.sleep(0.02)
    reader.join()
    err = proc.stderr.read()
    wall = time.perf_counter() - start
    if proc.returncode:
        print(f"  ! {' '.join(cmd[2:5])} exited {proc.returncode}: {err.strip().splitlines()[-1:]}", flush=True)
    work = peak[0] if at_last_line[0] is None else at_last_line[0]  # printed nothing: only the whole peak is known
    return wall, work / 2**20, peak[0] / 2**20, proc.returncode


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, action="append", default=[], help="corpus size; repeat for a curve")
    ap.add_argument("--plan-only", type=int, action="append", default=[],
                    help="also a corpus of this size with import and --dry-run only (no run): the listing and plan "
                         "at a size whose run this machine cannot spare the time for")
    ap.add_argument("--again", type=int, action="append", default=[],
                    help="corpus size whose finished run an earlier --clips N left in --work: time only the "
                         "resume no-op and the dry-run over it (nothing rebuilt); repeat for a curve")
    ap.add_argument("--work", help="scratch folder (default: a temp folder, removed at the end)")
    ap.add_argument("--model", default="vorbis", help="codec back-end to run (default vorbis: weight-free, fast)")
    ap.add_argument("--seconds", type=float, default=0.25, help="clip length")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = ap.parse_args()
    if not args.clips and not args.plan_only and not args.again:
        ap.error("give --clips, --plan-only and/or --again")
    if args.again and not args.work:
        ap.error("--again needs --work: the folder holding the finished run")

    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="bench-scale-"))
    py = sys.executable
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; model {args.model}, {args.seconds} s clips, "
          f"{args.workers} Ray workers", flush=True)
    print(f"{'clips':>9} {'stage':<16} {'wall s':>9} {'work MiB':>9} {'peak MiB':>9} {'per clip':>12}", flush=True)
    results = {}
    for n in sorted(set(args.clips) | set(args.plan_only) | set(args.again)):
        full, again = n in args.clips, n in args.again and n not in args.clips
        corpus, out = work / f"corpus-{n}", work / f"out-{n}"
        if again and not (out / "manifest").is_dir():
            sys.exit(f"--again {n}: no finished run in {out} (run --clips {n} --work {work} first)")
        if not again:
            shutil.rmtree(out, ignore_errors=True)
        if not corpus.exists():
            t0 = time.perf_counter()
            build_corpus(corpus, n, args.seconds)
            print(f"{n:>9} {'(build corpus)':<16} {time.perf_counter() - t0:>9.1f}", flush=True)
        run = [py, "-m", "reconstruct.cli", "run", "--method", "codec", "--model", args.model, "--corpus", str(corpus),
               "--out", str(out)]
        ray = ["--executor", "ray", "--workers", str(args.workers)]
        stages = [("manifests import", [py, "-m", "manifests.cli", "import", "--corpus", str(corpus),
                                        "--out", str(work / f"import-{n}.parquet")]),
                  ("dry-run", run + ["--dry-run"]),
                  ("run", run + ray),
                  ("resume no-op", run + ray),
                  ("dry-run (done)", run + ["--dry-run"])]
        stages = stages if full else [stages[3], stages[4]] if again else stages[:2]
        results[n] = {}
        for name, cmd in stages:
            wall, working, peak, rc = measure(cmd)
            results[n][name] = (wall, working, peak)
            per = f"{wall / n * 1e3:.3f} ms" if rc == 0 else "failed"
            print(f"{n:>9} {name:<16} {wall:>9.1f} {working:>9.0f} {peak:>9.0f} {per:>12}", flush=True)
    for name in ("dry-run", "run", "resume no-op", "dry-run (done)"):
        sizes = sorted(n for n in results if name in results[n])
        if len(sizes) < 2:
            continue
        lo, hi = sizes[0], sizes[-1]
        working, peak = ((results[hi][name][k] - results[lo][name][k]) * 1024 / (hi - lo) for k in (1, 2))
        print(f"driver growth per clip, {name}: work {working:.3f} KiB, whole process {peak:.3f} KiB ({lo} -> {hi} clips)")
        if name == "run":
            ratio = (results[hi]["run"][0] / hi) / (results[lo]["run"][0] / lo)
            print(f"run time per clip at {hi} clips / at {lo} clips: {ratio:.2f}")
        if name == "resume no-op":
            slope = (results[hi][name][0] - results[lo][name][0]) / (hi - lo)
            print(f"resume no-op per million clips, beyond start-up (slope {lo} -> {hi}): {slope * 1e6:.0f} s")
    if not args.work and not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

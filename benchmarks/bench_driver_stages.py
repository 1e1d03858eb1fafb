"""Where the driver's memory goes, stage by stage (a script that prints numbers, not a test).

  .venv/bin/python benchmarks/bench_driver_stages.py --corpus DIR --out DIR [--model vorbis] [--dry-run]

Runs `reconstruct run` in this process and prints, for each driver stage (corpus listing, output-path
check, reading what OUT already holds, the plan), the process's RSS before and after it, the peak while
it ran (polled every 10 ms) and the bytes Arrow holds after it. Point --out at a finished run to see a
resume with nothing to do; compare two corpus sizes for the growth per clip. With --compact it only
compacts a copy of OUT's manifest (what every run does last) and prints that step's peak.
"""
from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

import psutil
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HARDSPOOF_NO_BAR", "1")

from reconstruct import resume, run  # noqa: E402
from reconstruct.cli import main as cli  # noqa: E402

PROC = psutil.Process()
PEAK = [0, 0]  # since the stage began, since the process began


def _poll() -> None:
    while True:
        rss = PROC.memory_info().rss
        PEAK[0], PEAK[1] = max(PEAK[0], rss), max(PEAK[1], rss)
        time.sleep(0.01)


def _timed(owner, name: str, label: str) -> None:
    fn = getattr(owner, name)

    def wrapper(*args, **kwargs):
        before, PEAK[0] = PROC.memory_info().rss, 0
        result = fn(*args, **kwargs)
        mib = 2 ** 20
        print(f"{label:<22} {before / mib:>8.0f} {PROC.memory_info().rss / mib:>8.0f} {PEAK[0] / mib:>8.0f} "
              f"{pa.total_allocated_bytes() / mib:>10.1f}", flush=True)
        return result

    setattr(owner, name, wrapper)


def _compact_copy(out: str) -> None:
    import shutil
    import tempfile

    import manifests
    from manifests.listing import driver_allocator

    driver_allocator()  # as `reconstruct run` does
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "manifest"
        shutil.copytree(Path(out) / "manifest", folder)
        before, PEAK[0] = PROC.memory_info().rss, 0
        start = time.perf_counter()
        manifests.compact(str(folder))
        print(f"compaction: {time.perf_counter() - start:.1f} s, RSS {before / 2**20:.0f} MiB before, "
              f"peak {PEAK[0] / 2**20:.0f} MiB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--model", default="vorbis")
    ap.add_argument("--dry-run", action="store_true")
    ap.add_argument("--compact", action="store_true",
                    help="only compact a copy of OUT's manifest (the end of every run), and print its peak")
    args = ap.parse_args()
    threading.Thread(target=_poll, daemon=True).start()
    if args.compact:
        _compact_copy(args.out)
        return
    _timed(run, "list_corpus", "corpus listing")
    _timed(run, "check_plan", "output-path check")
    _timed(resume.Done, "read", "read OUT's manifest")
    _timed(run, "build_plan", "plan")
    print(f"{'stage':<22} {'RSS MiB':>8} {'after':>8} {'peak':>8} {'Arrow MiB':>10}")
    argv = ["run", "--model", args.model, "--corpus", args.corpus, "--out", args.out]
    argv += ["--dry-run"] if args.dry_run else ["--executor", "ray", "--workers", "2"]
    try:
        cli(argv, standalone_mode=False)
    finally:
        print(f"process peak RSS {max(PEAK[1], PROC.memory_info().rss) / 2 ** 20:.0f} MiB")


if __name__ == "__main__":
    main()

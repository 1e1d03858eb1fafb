"""One Ray node with 2 CPUs against two Ray nodes with 1 CPU each, on this machine: clips per second.

Usage:
  python benchmarks/bench_ray_nodes.py --clips 64 --seconds 2 --repeats 3

Both set-ups are local clusters of `ray start --block` processes (tests/docker/raycluster.py,
private ports and temp dir; another Ray instance on the machine is left alone) with the same
2 CPUs in all. Each timed run is the whole `reconstruct run --ray-address ... --workers 2`
command (Griffin-Lim, generated speech-like clips): driver start, corpus import, two actors
(one per CPU), manifest parts, compaction; a fresh --out every time. Ray starts before timing.
Prints the median clips/s of each set-up and the ratio two nodes / one node (1.0 = the second
node costs nothing; below 1 = the cost of a second raylet, object store and cross-node traffic).
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HARDSPOOF_NO_BAR", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.conftest import write_corpus  # noqa: E402
from tests.docker.raycluster import BIN, LocalRayCluster  # noqa: E402

SETUPS = {"1 node x 2 CPUs": [2], "2 nodes x 1 CPU": [1, 1]}


def clips_per_second(cluster: LocalRayCluster, corpus: Path, work: Path, clips: int, repeats: int,
                     n_iter: int) -> list[float]:
    """`repeats` timed runs of the whole `reconstruct run` against the cluster; clips/s of each."""
    rates = []
    for i in range(repeats):
        out = work / f"out-{len(cluster.nodes)}-{i}"
        cmd = [str(BIN / "reconstruct"), "run", "--ray-address", cluster.address, "--model", "griffinlim",
               "--param", f"n_iter={n_iter}", "--corpus", str(corpus), "--out", str(out), "--workers", "2"]
        start = time.perf_counter()
        r = subprocess.run(cmd, env=cluster.env, capture_output=True, text=True)
        elapsed = time.perf_counter() - start
        if r.returncode != 0:
            raise SystemExit(f"reconstruct run failed:\n{r.stdout[-2000:]}\n{r.stderr[-4000:]}")
        rates.append(clips / elapsed)
    return rates


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=2.0, help="length of each generated clip")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--n-iter", type=int, default=32, help="Griffin-Lim iterations (work per clip)")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-ray-nodes-"))
    corpus = write_corpus(work / "corpus", n_bonafide=args.clips, n_spoof=0, seconds=args.seconds) / "protocol.csv"
    medians = {}
    for name, cpus in SETUPS.items():
        with LocalRayCluster() as cluster:
            for k, n in enumerate(cpus):
                cluster.add_node(f"node{k}", n, head=k == 0)
            if not cluster.wait_nodes(*(f"node{k}" for k in range(len(cpus)))):
                raise SystemExit(f"{name}: the Ray nodes did not start:\n{cluster.logs()}")
            rates = clips_per_second(cluster, corpus, work, args.clips, args.repeats, args.n_iter)
        medians[name] = statistics.median(rates)
        print(f"{name}: {medians[name]:.2f} clips/s (median of {args.repeats}: "
              f"{', '.join(f'{r:.2f}' for r in rates)})", flush=True)
    one, two = medians["1 node x 2 CPUs"], medians["2 nodes x 1 CPU"]
    print(f"ratio 2 nodes x 1 CPU / 1 node x 2 CPUs: {two / one:.2f} "
          f"({args.clips} clips of {args.seconds:g} s, griffinlim n_iter={args.n_iter}, {os.cpu_count()} cores)")


if __name__ == "__main__":
    main()

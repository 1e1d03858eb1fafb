"""Peak memory of `reconstruct run` and `detector score` on one long clip (issue 19, item 7).

Usage:
  python benchmarks/bench_long_clip.py                      # a 2-hour 16 kHz clip, opus, tiny detector
  python benchmarks/bench_long_clip.py --hours 0.5 --model griffinlim

Builds, in a temp folder, one speech-like clip of --hours at 16 kHz (16-bit FLAC, written in
blocks), a small labelled corpus to train a `tiny` detector on (2 optimizer steps: the weights do
not matter, only the shapes), and then runs, each as its own child process:
  reconstruct run --model M --executor local --corpus DIR --out OUT   (weight-free back-end)
  detector score --checkpoint RUN --input CLIP --out scores.tsv
and prints each one's peak resident set size (ru_maxrss of the child, via RUSAGE_CHILDREN in a
wrapper process that runs only that command) and wall time; `python -c "import torch"` gives the
floor every command starts from.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

SR = 16000
# Runs one command as its only child and prints that child's peak RSS (KiB on Linux) as JSON.
_MEASURE = ("import json, resource, subprocess, sys, time; t = time.time(); rc = subprocess.call(sys.argv[1:]); "
            "print(json.dumps({'rc': rc, 'wall_s': time.time() - t, "
            "'peak_kib': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))")


def speech(start: int, n: int, seed: int = 0, f0: float = 130.0) -> np.ndarray:
    """Samples [start, start + n) of an endless voiced signal: gliding harmonics, syllable envelope, noise."""
    t = (start + np.arange(n)) / SR
    phase = 2 * np.pi * (f0 * t - f0 * 0.1 * np.cos(2 * np.pi * 0.7 * t) / (2 * np.pi * 0.7))
    x = sum(np.sin(k * phase) / k for k in range(1, 12)) * (0.5 + 0.5 * np.sin(2 * np.pi * 3.5 * t) ** 2)
    x += 0.02 * np.random.default_rng([seed, start]).standard_normal(n)
    return (0.12 * x).astype(np.float32)


def write_long(path: Path, hours: float, block_s: int = 60) -> None:
    total = int(hours * 3600 * SR)
    with sf.SoundFile(path, "w", SR, 1, subtype="PCM_16", format="FLAC") as f:
        for start in range(0, total, block_s * SR):
            f.write(speech(start, min(block_s * SR, total - start)))


def small_corpus(root: Path) -> Path:
    """4 bona fide + 4 coarse-quantised 'spoof' clips of 2 s with protocol.csv (train/dev)."""
    root.mkdir(parents=True)
    lines = ["path,label,attack,speaker,split"]
    for i in range(8):
        label = "bonafide" if i < 4 else "spoof"
        x = speech(0, 2 * SR, seed=i, f0=110 + 15 * i)
        sf.write(root / f"c{i}.flac", x if label == "bonafide" else np.round(x * 8) / 8, SR)
        lines.append(f"c{i}.flac,{label},{'-' if label == 'bonafide' else 'A01'},s{i % 2},{'train' if i % 2 else 'dev'}")
    (root / "protocol.csv").write_text("\n".join(lines) + "\n")
    return root / "protocol.csv"


def measure(*cmd: str) -> dict:
    out = subprocess.run([sys.executable, "-c", _MEASURE, *cmd], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if result["rc"] != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {result['rc']}")
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hours", type=float, default=2.0, help="length of the long clip")
    ap.add_argument("--model", default="opus", help="weight-free back-end for reconstruct run")
    args = ap.parse_args()
    os.environ.setdefault("HARDSPOOF_NO_BAR", "1")
    bindir = Path(sys.executable).parent
    with tempfile.TemporaryDirectory(prefix="hardspoof-long-") as tmp:
        tmp = Path(tmp)
        (tmp / "long").mkdir()
        clip = tmp / "long" / "long.flac"
        t = time.time()
        write_long(clip, args.hours)
        print(f"clip: {args.hours:g} h at {SR} Hz, {clip.stat().st_size / 2 ** 20:.0f} MiB FLAC "
              f"(written in {time.time() - t:.0f} s)", flush=True)
        subprocess.run([bindir / "manifests", "import", "--corpus", small_corpus(tmp / "small"),
                        "--out", tmp / "small.parquet"], check=True, capture_output=True)
        subprocess.run([bindir / "detector", "train", "--manifest", tmp / "small.parquet", "--out", tmp / "run",
                        "--frontend", "tiny", "--backend", "linear", "--tiny-hidden", "16", "--batch-size", "2",
                        "--epochs", "1", "--max-steps", "2", "--no-augment", "--no-progress"], check=True,
                       capture_output=True)
        rows = [("python -c 'import torch' (the floor)", measure(sys.executable, "-c", "import torch")),
                (f"reconstruct run --model {args.model} --executor local",
                 measure(str(bindir / "reconstruct"), "run", "--model", args.model, "--executor", "local",
                         "--corpus", str(tmp / "long"), "--out", str(tmp / "out"))),
                ("detector score (tiny, crop 64600)",
                 measure(str(bindir / "detector"), "score", "--checkpoint", str(tmp / "run"), "--input", str(clip),
                         "--out", str(tmp / "scores.tsv"), "--no-progress"))]
        print(f"{'command':<48} {'peak RSS':>10} {'wall':>8}")
        for name, r in rows:
            print(f"{name:<48} {r['peak_kib'] / 1024:>6.0f} MiB {r['wall_s']:>6.0f} s")


if __name__ == "__main__":
    main()

"""CPU scoring throughput of the published countermeasures (a script that prints numbers, not a test).

    HARDSPOOF_MODELS=STORE python benchmarks/bench_pretrained.py [--threads 2] [--clips 16] [--repeats 3]
        [--names aasist,aasist-l,...] [--no-onnx]

For each staged model: seconds of audio scored per second of compute (x real time) through hardspoof's
scoring path (its windows, batch 8), with PyTorch and, for fixed-crop models, through the model exported to
ONNX and run by onnxruntime with the same threads; the two alternate, `--repeats` times each, and medians are
printed with their ratio. Clips: `--clips` synthetic speech-like clips of 4.0 s (parity.parity_clips' recipe).
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from detector.model.pretrained import registry
from detector.model.pretrained.parity import parity_clips
from detector.scoring.onnx_export import OnnxDetector, export_model
from detector.scoring.windows import score_paths


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--clips", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--names", default=",".join(registry.ENTRIES))
    ap.add_argument("--no-onnx", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    work = Path(tempfile.mkdtemp(prefix="bench-pretrained-"))
    paths = []
    for i, x in enumerate(parity_clips(lengths=(64_000,) * a.clips, seed=0)):
        paths.append(str(work / f"{i}.wav"))
        sf.write(paths[-1], x, 16000, subtype="FLOAT")
    audio = a.clips * 4.0
    print(f"{a.clips} clips of 4.0 s, {a.threads} threads, medians of {a.repeats} alternating runs")
    print("| model | PyTorch x real time | ONNX x real time | ONNX / PyTorch |")
    print("|---|---|---|---|")
    for name in a.names.split(","):
        if not registry.staged_path(registry.entry(name)).is_file():
            print(f"| {name} | not staged | | |")
            continue
        model, cfg, meta = registry.load(name)
        pad = cfg.data.pad == "repeat"
        runners = {"torch": model}
        if not a.no_onnx and cfg.data.pad == "repeat":  # whole-clip models take any length: export needs a crop
            out = work / f"{name}.onnx"
            export_model(model, cfg, meta, out)
            runners["onnx"] = OnnxDetector(out, threads=a.threads)
        times = {k: [] for k in runners}
        for _ in range(a.repeats):
            for k, m in runners.items():
                t0 = time.perf_counter()
                score_paths(m, paths, cfg.data.crop, batch_size=8, pad=pad)
                times[k].append(time.perf_counter() - t0)
        rt = {k: audio / statistics.median(v) for k, v in times.items()}
        onnx = f"{rt['onnx']:.1f}" if "onnx" in rt else "-"
        ratio = f"{rt['onnx'] / rt['torch']:.2f}" if "onnx" in rt else "-"
        print(f"| {name} | {rt['torch']:.1f} | {onnx} | {ratio} |", flush=True)


if __name__ == "__main__":
    main()

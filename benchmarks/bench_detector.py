"""Detector throughput on this machine (a script that prints numbers, not a test).

  .venv/bin/python benchmarks/bench_detector.py [--steps 20] [--batch-size 8] [--crop 64600] [--threads N]

Prints, for the `tiny` front-end + AASIST back-end with RACL:
  1. training samples/s through detector's own loop pieces (sampler + DataLoader + batch_loss + Adam),
  2. the same model in a bare PyTorch loop over preloaded tensors (BCE only, no I/O),
  3. the data loader alone (read + resample + crop + augment + collate), samples/s, and its ratio to (1),
  4. scoring real-time factor (seconds of compute per second of audio) via detector.scoring,
  5. the same scoring through the model exported to ONNX and run by onnxruntime (same threads, same windows),
     against PyTorch in alternating runs (--onnx-repeats each; medians), and the largest score difference.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import manifests  # noqa: E402
from detector.training.augment import Augmenter  # noqa: E402
from detector.config import DataConfig, ModelConfig, RunConfig, TrainConfig  # noqa: E402
from detector.training.data import ClipDataset, assign_splits, collate, load_clips  # noqa: E402
from detector.model.detector import Detector  # noqa: E402
from detector.training.sampler import PairedBatchSampler  # noqa: E402
from detector.scoring.windows import score_paths  # noqa: E402
from detector.training.loop import batch_loss  # noqa: E402


def make_manifest(root: Path, n: int, seconds: float) -> Path:
    """n bona fide + n reconstructions + n spoofs of synthetic speech-like audio at 16 kHz."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        t = np.arange(int(seconds * 16000)) / 16000
        x = sum(np.sin(2 * np.pi * k * (110 + 10 * i) * t) / k for k in range(1, 8)) * (0.5 + 0.5 * np.sin(7 * t) ** 2)
        x = (0.3 * x / np.abs(x).max() + 0.01 * rng.standard_normal(t.shape)).astype(np.float32)
        for kind, label, y in (("original", "bonafide", x), ("reconstruction", "spoof", np.convolve(x, np.ones(3) / 3, "same")),
                               ("original", "spoof", np.round(x * 8) / 8)):
            uid = f"{label}{i}" if kind == "original" else f"rec{i}"
            path = root / f"{uid}.flac"
            sf.write(path, y.astype(np.float32), 16000)
            rows.append(dict(manifests.empty_row(), utt_id=uid, path=str(path), label=label, kind=kind,
                             source_id=f"bonafide{i}" if kind == "reconstruction" else uid, attack="-" if label == "bonafide" else "A01",
                             method="vocoder" if kind == "reconstruction" else None, split="train", status="ok"))
    return Path(manifests.write(rows, root / "m.parquet"))


def rate(n: int, seconds: float) -> float:
    return n / max(seconds, 1e-9)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--crop", type=int, default=64600)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--onnx-repeats", type=int, default=3, help="alternating PyTorch/ONNX scoring runs (0: skip)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = RunConfig(data=DataConfig(crop=args.crop, batch_size=args.batch_size),
                    model=ModelConfig(frontend="tiny", backend="aasist", aggregation="attn"), train=TrainConfig())
    tmp = Path(tempfile.mkdtemp())
    m = make_manifest(tmp, n=args.batch_size * args.steps // 2 + 2, seconds=args.crop / 16000 + 1.0)
    clips = assign_splits(load_clips([m]))
    ds = ClipDataset(clips, args.crop, train=True, augment=Augmenter(), seed=0)
    sampler = PairedBatchSampler(clips, args.batch_size)
    loader = DataLoader(ds, batch_sampler=sampler, collate_fn=collate)

    t0, n = time.perf_counter(), 0  # 3. data loader alone
    batches = []
    for b in loader:
        batches.append(b)
        n += b["wav"].shape[0]
        if len(batches) >= args.steps:
            break
    load_rate = rate(n, time.perf_counter() - t0)

    torch.manual_seed(0)  # 1. detector loop (loader + RACL + Adam)
    model = Detector(cfg.model).train()
    opt = torch.optim.Adam(model.parameters(), lr=5e-4)
    t0, n, step = time.perf_counter(), 0, 0
    for b in loader:
        terms, _ = batch_loss(model, b["wav"], b["label"], [clips[i] for i in b["index"].tolist()], cfg.train, b["valid"])
        opt.zero_grad()
        terms["total"].backward()
        opt.step()
        n += b["wav"].shape[0]
        step += 1
        if step >= args.steps:
            break
    train_rate = rate(n, time.perf_counter() - t0)

    torch.manual_seed(0)  # 2. bare PyTorch loop over preloaded tensors
    model = Detector(cfg.model).train()
    opt = torch.optim.Adam(model.parameters(), lr=5e-4)
    data = [(b["wav"], b["label"]) for b in batches]
    t0, n = time.perf_counter(), 0
    for wav, lab in data:
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(wav).logit, lab)
        opt.zero_grad()
        loss.backward()
        opt.step()
        n += wav.shape[0]
    bare_rate = rate(n, time.perf_counter() - t0)

    paths = [c.path for c in clips[: 4 * args.batch_size]]  # 4. scoring RTF
    audio_s = sum(sf.info(p).duration for p in paths)
    t0 = time.perf_counter()
    score_paths(model, paths, args.crop, batch_size=args.batch_size)
    rtf = (time.perf_counter() - t0) / audio_s

    print(f"machine: {torch.get_num_threads()} torch threads, crop {args.crop} samples, batch {args.batch_size}, "
          f"{args.steps} steps, tiny front-end + AASIST + RACL")
    print(f"train (detector loop, incl. loading+augment): {train_rate:8.2f} samples/s")
    print(f"train (bare PyTorch, preloaded tensors, BCE): {bare_rate:8.2f} samples/s  "
          f"(detector overhead {100 * (bare_rate / train_rate - 1):.0f}%)")
    print(f"data loader alone:                            {load_rate:8.2f} samples/s  "
          f"({load_rate / train_rate:.1f}x training rate; target >= 3x)")
    print(f"scoring real-time factor:                     {rtf:8.4f}  ({1 / rtf:.0f}x faster than real time)")
    if args.onnx_repeats > 0:
        onnx_vs_torch(model, cfg, paths, audio_s, args, tmp)


def onnx_vs_torch(model, cfg: RunConfig, paths: list[str], audio_s: float, args, tmp: Path) -> None:
    """5. Scoring RTF through onnxruntime vs PyTorch, alternating which runs first; medians of the repeats."""
    from detector.scoring.onnx_export import OnnxDetector, export_model

    t0 = time.perf_counter()
    report = export_model(model, cfg, {}, tmp / "model.onnx")
    export_s = time.perf_counter() - t0
    scorer = OnnxDetector(tmp / "model.onnx", threads=args.threads)
    runs: dict[str, list[float]] = {"pytorch": [], "onnx": []}
    scores = {}
    for r in range(args.onnx_repeats):
        for name in (("pytorch", "onnx") if r % 2 == 0 else ("onnx", "pytorch")):
            t0 = time.perf_counter()
            scores[name] = score_paths(model if name == "pytorch" else scorer, paths, args.crop,
                                       batch_size=args.batch_size)[0]
            runs[name].append((time.perf_counter() - t0) / audio_s)
    med = {k: float(np.median(v)) for k, v in runs.items()}
    print(f"ONNX export: {export_s:.0f} s, {report['length_axis']} length, max |logit diff| on its check inputs "
          f"{report['max_abs_diff']:.1e}")
    print(f"scoring RTF, PyTorch vs onnxruntime (median of {args.onnx_repeats}, {args.threads} thread(s)): "
          f"{med['pytorch']:.4f} vs {med['onnx']:.4f}  (ONNX {med['pytorch'] / med['onnx']:.2f}x the speed of PyTorch); "
          f"max |score diff| over {len(paths)} clips {np.nanmax(np.abs(scores['onnx'] - scores['pytorch'])):.1e}")


if __name__ == "__main__":
    main()

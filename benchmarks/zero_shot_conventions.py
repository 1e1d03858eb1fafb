"""Zero-shot EER of a published AASIST-family checkpoint on a labelled corpus split, two ways side by side:

- reference: the authors' convention: the first 64,600 samples of each clip (repeated when shorter), score =
  the bona fide output out[:, 1] alone (what clovaai/aasist's evaluation writes);
- hardspoof: `detector eval --checkpoint pretrained:NAME`'s convention: windows of 64,600 samples covering
  the whole clip (repeated when shorter), score = out[:, 1] - out[:, 0] (the log-odds), averaged over windows.

Both from one forward pass per window through hardspoof's module (which equals the reference's forward to
1e-4, tests/detector/model/test_pretrained_aasist.py). Prints EER % per attack, their mean, and pooled.

    python benchmarks/zero_shot_conventions.py --name aasist --corpus ../shared/data/dev-corpus/protocol.csv \
        --split dev [--threads 1]
(needs `detector models pull NAME --from ...` first; HARDSPOOF_MODELS names the store)
"""
from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
import torch

from detector.model.pretrained import registry
from detector.scoring.metrics import eer
from detector.training.data import fix_length, windows
from manifests.audio import load_audio


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--name", default="aasist")
    ap.add_argument("--corpus", required=True, help="protocol.csv with path,label,attack,split")
    ap.add_argument("--split", default="dev")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    model, cfg, _ = registry.load(a.name)
    raw = registry.read_state(registry.staged_path(registry.entry(a.name)), a.name)
    w1, b1 = raw["out_layer.weight"][1].double(), raw["out_layer.bias"][1].double()
    root = Path(a.corpus).parent
    rows = [r for r in csv.DictReader(open(a.corpus, encoding="utf-8")) if r["split"] == a.split]
    ref, ours, label, attack = [], [], [], []

    def forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(B, T) -> (out1, log-odds) per row."""
        with torch.no_grad():
            feats, _ = model.aggregator(model.encode(torch.from_numpy(x)))
            emb = model.backend.embed(feats).double()
            return (emb @ w1 + b1).numpy(), model.head(emb.float()).squeeze(-1).double().numpy()

    for r in rows:
        wav, _ = load_audio(root / r["path"], sr=16000)
        out1, _ = forward(fix_length(wav, cfg.data.crop)[None].astype(np.float32))
        _, odds = forward(windows(wav, cfg.data.crop).astype(np.float32))
        ref.append(out1[0])
        ours.append(odds.mean())
        label.append(r["label"] == "bonafide")
        attack.append(r["attack"])
    label, attack = np.array(label), np.array(attack)
    print(f"{a.name} zero-shot on the {a.split} split ({len(rows)} clips), EER %")
    print("| convention | " + " | ".join(sorted(set(attack[~label]))) + " | mean | pooled |")
    for title, s in (("reference: first 64,600 samples, out[:, 1]", np.array(ref)),
                     ("hardspoof: windows, out[:, 1] - out[:, 0]", np.array(ours))):
        per = [100 * eer(s[label], s[attack == k])[0] for k in sorted(set(attack[~label]))]
        pooled = 100 * eer(s[label], s[~label])[0]
        print(f"| {title} | " + " | ".join(f"{v:.1f}" for v in per) + f" | {np.mean(per):.1f} | {pooled:.1f} |")


if __name__ == "__main__":
    main()

"""Training diagnostics (`detector train --diagnostics`, issue 28): what the loss does to the embedding space,
epoch by epoch, from numbers the loop already has.

Each epoch appends rows `epoch,metric,group,value` to OUT/diagnostics.csv (long format, so the set of attacks
may be anything); `plot` draws OUT/diagnostics.png at the end. Metrics:
- `loss` (group cls/std/enh/reg/oc/total): the training terms averaged over the epoch's steps (RACL terms are
  computed, and logged, during a CE warm-up too);
- `emb_norm` (train): mean norm of the contrastive embedding before its L2 normalisation, over training batches;
- `dist` (group a~b): mean Euclidean distance between unit clip embeddings of the dev pass (each clip's mean
  window embedding, renormalised): bonafide~own_recon (a bona fide original and its own reconstructions),
  bonafide~spoof (corpus spoofs, e.g. TTS), spoof~recon, the spreads bonafide~bonafide, spoof~spoof,
  recon~recon, and heldout~bonafide, heldout~spoof for the held-out attacks' dev clips;
- `inside_margin` (dev): the share of different-label dev pairs closer than the margin (what L_std still pushes);
- `logit_mean`, `logit_std`, `n` (group attack=A, recon=METHOD, kind=..., with a "heldout " prefix for the
  held-out attacks' clips): where each kind of dev clip lands on the score axis.
Held-out clips are only looked at: they take no part in the dev loss, the EER or the epoch choice.
Pair means use at most `PAIR_CAP` clips per group (evenly spaced, no random draw: the training RNG is untouched).
"""
from __future__ import annotations

import csv
import os
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

from ..config import RunConfig
from .data import BONAFIDE, Clip, assign_splits, hold_out, load_clips

FILE = "diagnostics.csv"
FIELDS = ["epoch", "metric", "group", "value"]
PAIR_CAP = 1000  # clips per group in a pairwise mean (1000 x 1000 distances)
LOSS_TERMS = ("cls", "std", "enh", "reg", "oc", "total")


def held_out_dev(paths: Sequence[str], cfg: RunConfig, allow_remote_paths: bool = False) -> list[Clip]:
    """The dev-split clips of the held-out attacks (their spoofs and those spoofs' reconstructions), with the split
    they would have had had they not been held out (the hash split is per speaker, so it does not move). Empty
    without `data.holdout_attacks`."""
    if not cfg.data.holdout_attacks:
        return []
    every = assign_splits(load_clips(paths, cfg.data.bonafide_methods, allow_remote_paths=allow_remote_paths),
                          cfg.data.dev_fraction)
    kept, _ = hold_out(every, cfg.data.holdout_attacks)
    kept_ids = {c.utt_id for c in kept}
    return [c for c in every if c.split == "dev" and c.utt_id not in kept_ids]


def _unit(emb: np.ndarray) -> np.ndarray:
    return emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)


def _spaced(rows: np.ndarray, cap: int = PAIR_CAP) -> np.ndarray:
    return rows if len(rows) <= cap else rows[np.linspace(0, len(rows) - 1, cap).astype(int)]


def _distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n, E), (m, E) -> (n, m) Euclidean distances."""
    sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
    return np.sqrt(np.maximum(sq, 0.0))


def mean_distance(emb: np.ndarray, a: np.ndarray, b: np.ndarray | None = None) -> float:
    """Mean distance over pairs (i in a, j in b), or over pairs i < j within `a` when b is None (row indices
    into emb); NaN when there is no pair."""
    a = _spaced(a)
    if b is None:
        if len(a) < 2:
            return float("nan")
        d = _distances(emb[a], emb[a])
        return float(d[np.triu_indices(len(a), 1)].mean())
    b = _spaced(b)
    return float(_distances(emb[a], emb[b]).mean()) if len(a) and len(b) else float("nan")


def inside_margin(emb: np.ndarray, labels: np.ndarray, margin: float) -> float:
    """Share of different-label pairs (bona fide x spoof rows of emb) with distance < margin; NaN without pairs."""
    bona, spoof = _spaced(np.flatnonzero(labels == BONAFIDE)), _spaced(np.flatnonzero(labels != BONAFIDE))
    if not len(bona) or not len(spoof):
        return float("nan")
    return float((_distances(emb[bona], emb[spoof]) < margin).mean())


def embedding_rows(clips: Sequence[Clip], emb: np.ndarray, heldout: np.ndarray, margin: float) -> list[tuple]:
    """(metric, group, value) of the dev pass's embeddings: clips (N,), emb (N, E) mean clip embeddings (NaN rows
    for clips not scored), heldout (N,) bool: the probe clips."""
    ok = np.isfinite(emb).all(1) if emb.shape[1] else np.zeros(len(clips), bool)
    e = _unit(np.nan_to_num(emb))
    labels = np.array([c.label for c in clips])
    recon = np.array([c.kind == "reconstruction" for c in clips])
    seen = ok & ~heldout
    bona = np.flatnonzero(seen & ~recon & (labels == BONAFIDE))
    spoof = np.flatnonzero(seen & ~recon & (labels != BONAFIDE))
    recons = np.flatnonzero(seen & recon)
    row_of = {clips[i].utt_id: i for i in bona}
    own = [(row_of[clips[j].source_id], j) for j in recons if clips[j].source_id in row_of]
    held = np.flatnonzero(ok & heldout)
    dists = {"bonafide~own_recon": float(np.mean([np.linalg.norm(e[i] - e[j]) for i, j in own])) if own else float("nan"),
             "bonafide~spoof": mean_distance(e, bona, spoof), "spoof~recon": mean_distance(e, spoof, recons),
             "bonafide~bonafide": mean_distance(e, bona), "spoof~spoof": mean_distance(e, spoof),
             "recon~recon": mean_distance(e, recons), "heldout~bonafide": mean_distance(e, held, bona),
             "heldout~spoof": mean_distance(e, held, spoof)}
    return [("dist", k, v) for k, v in dists.items()] + \
        [("inside_margin", "dev", inside_margin(e[seen], labels[seen], margin))]


def logit_rows(clips: Sequence[Clip], scores: np.ndarray, heldout: np.ndarray) -> list[tuple]:
    """(metric, group, value): mean, std and count of the scores per attack (originals), per reconstruction
    method and per kind, "heldout "-prefixed for the probe clips."""
    groups: dict[str, list[float]] = {}
    for c, s, h in zip(clips, scores, heldout):
        if not np.isfinite(s):
            continue
        pre = "heldout " if h else ""
        kind = "reconstruction" if c.kind == "reconstruction" else ("bonafide" if c.label == BONAFIDE else "spoof")
        fine = f"recon={c.method}" if c.kind == "reconstruction" else f"attack={c.attack}"
        for g in (pre + fine, f"{pre}kind={kind}"):
            groups.setdefault(g, []).append(float(s))
    out = []
    for g, v in sorted(groups.items()):
        out += [("logit_mean", g, float(np.mean(v))), ("logit_std", g, float(np.std(v))), ("n", g, float(len(v)))]
    return out


class Diagnostics:
    """Writes OUT/diagnostics.csv (rank 0). `next_epoch`: rows of that epoch and later are dropped first (they
    will run again after a resume, or a --fresh run starts at 0)."""

    def __init__(self, out: str | os.PathLike, dev: Sequence[Clip], probe: Sequence[Clip], margin: float,
                 next_epoch: int = 0):
        self.path = Path(out) / FILE
        self.clips = list(dev) + list(probe)
        self.heldout = np.arange(len(self.clips)) >= len(dev)
        self.margin = margin
        self._trim(next_epoch)

    def _trim(self, next_epoch: int) -> None:
        if not self.path.is_file():
            return
        with open(self.path, newline="") as fh:
            rows = [r for r in csv.DictReader(fh) if int(r["epoch"]) < next_epoch]
        tmp = self.path.with_name(f".{FILE}.tmp")
        with open(tmp, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=FIELDS)
            w.writeheader()
            w.writerows(rows)
        os.replace(tmp, self.path)

    def rows(self, stats: dict, val: dict) -> list[tuple]:
        """(metric, group, value) of one epoch: `stats` from the training epoch (loss_* means), `val` from the
        dev pass with "scores" (N+P,) and "embeddings" (N+P, E)."""
        out = [("loss", k, float(stats[f"loss_{k}"])) for k in LOSS_TERMS if f"loss_{k}" in stats]
        if "loss_emb_norm" in stats:
            out.append(("emb_norm", "train", float(stats["loss_emb_norm"])))
        out += embedding_rows(self.clips, val["embeddings"], self.heldout, self.margin)
        return out + logit_rows(self.clips, val["scores"], self.heldout)

    def record(self, epoch: int, stats: dict, val: dict) -> None:
        new = not self.path.is_file()
        with open(self.path, "a", newline="") as fh:
            w = csv.writer(fh)
            if new:
                w.writerow(FIELDS)
            w.writerows([epoch, m, g, f"{v:.6g}"] for m, g, v in self.rows(stats, val))

    def plot(self) -> Path | None:
        """OUT/diagnostics.png from the CSV; None (and a warning) when it cannot be drawn."""
        try:
            return plot(self.path, self.path.with_suffix(".png"))
        except (OSError, ValueError) as e:
            print(f"warning: no {self.path.with_suffix('.png').name}: {e}", file=sys.stderr)
            return None


def read(path: str | os.PathLike) -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]:
    """(metric, group) -> (epochs, values) from a diagnostics.csv."""
    series: dict[tuple[str, str], list[tuple[int, float]]] = {}
    with open(path, newline="") as fh:
        for r in csv.DictReader(fh):
            series.setdefault((r["metric"], r["group"]), []).append((int(r["epoch"]), float(r["value"])))
    return {k: (np.array([e for e, _ in v]), np.array([x for _, x in v])) for k, v in series.items()}


def plot(csv_path: str | os.PathLike, png_path: str | os.PathLike) -> Path:
    """Five panels over epochs: loss terms, embedding norm, distances, share inside the margin, dev logits per
    group (mean ± std; dashed: held-out attacks). Matplotlib Agg, no display needed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = read(csv_path)
    panels = [("loss", "training loss terms"), ("emb_norm", "embedding norm (before L2)"), ("dist", "dev distances"),
              ("inside_margin", "different-label pairs inside the margin"), ("logit_mean", "dev logits (mean ± std)")]
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 3.2 * len(panels)), sharex=True)
    for ax, (metric, title) in zip(axes, panels):
        for (m, group), (ep, v) in sorted(data.items()):
            if m != metric or (metric == "logit_mean" and "kind=" in group):
                continue
            style = "--" if group.startswith("heldout") else "-"
            line, = ax.plot(ep, v, style, marker=".", label=group)
            if metric == "logit_mean" and ("logit_std", group) in data:
                sd = data[("logit_std", group)][1]
                ax.fill_between(ep, v - sd, v + sd, color=line.get_color(), alpha=0.15)
        ax.set_title(title, fontsize=10)
        if ax.lines:
            ax.legend(fontsize=7, loc="best", ncol=2)
    axes[-1].set_xlabel("epoch")
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)
    plt.close(fig)
    return Path(png_path)

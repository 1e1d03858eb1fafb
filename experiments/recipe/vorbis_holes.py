"""The cue the channel-matched reconstructions of experiments/recipe/aasist.yaml target: how much one more Ogg Vorbis
pass (`reconstruct`'s `vorbis` back-end) adds to the bona fide's Vorbis "holes" (and the other trivial cues), on the
first N bona fide *train* clips of the corpus (never a held-out attack). Prints the medians per bitrate asked.

    .venv/bin/python experiments/recipe/vorbis_holes.py [--corpus ../shared/data/dev-corpus] [--clips 30]
"""
from __future__ import annotations

import csv
import sys
from pathlib import Path

import click
import numpy as np
import soundfile as sf
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from cue_features import clip_features  # noqa: E402
from reconstruct.backends.classical_codec import Vorbis  # noqa: E402

SHOWN = ("holes_pct", "hf6_db", "zero_pct", "dc_dbfs")


def medians(wavs: list[np.ndarray]) -> dict[str, float]:
    feats = [clip_features(w, 16000) for w in wavs]
    return {k: float(np.median([f[k] for f in feats])) for k in SHOWN}


@click.command()
@click.option("--corpus", default=str(ROOT.parent / "shared/data/dev-corpus"), show_default=True,
              type=click.Path(exists=True, file_okay=False))
@click.option("--clips", default=30, show_default=True, type=click.IntRange(1))
@click.option("--kbps", "rates", multiple=True, type=float, default=(16, 32, 48, 64), show_default=True)
def main(corpus: str, clips: int, rates: tuple[float, ...]) -> None:
    root = Path(corpus)
    with (root / "protocol.csv").open() as fh:
        rows = [r for r in csv.DictReader(fh) if r["split"] == "train" and r["label"] == "bonafide"][:clips]
    wavs = [sf.read(root / r["path"], dtype="float32")[0] for r in rows]
    click.echo(f"{len(wavs)} bona fide train clips; medians of " + ", ".join(SHOWN))
    click.echo("as they are: " + "  ".join(f"{k} {v:.3g}" for k, v in medians(wavs).items()))
    for kbps in rates:
        codec = Vorbis(params={"bitrate_kbps": kbps})
        out = [codec._reconstruct(torch.from_numpy(w), None).numpy()[:len(w)] for w in wavs]
        click.echo(f"vorbis {kbps:g} kbps asked, {codec.achieved_kbps} on the reference: "
                   + "  ".join(f"{k} {v:.3g}" for k, v in medians(out).items()))


if __name__ == "__main__":
    main()

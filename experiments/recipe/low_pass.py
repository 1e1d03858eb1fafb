"""Band-limited copy of a corpus: every clip through the same steep low-pass (issue 28, section 2, third row).

The classes differ most at the top of the band (7-8 kHz: `mlsa-cs` ~26 dB above bona fide at 7.8-8 kHz, the TTS
below it; see ../results/recipe/cues-ltas.png). A zero-phase 10th-order Butterworth low-pass at `--cutoff-hz`
(default 7000) applied to every clip, bona fide and spoof, train and eval, leaves nothing above the cutoff to
learn. Clips are levelled again like the corpus (RMS -26 dBFS, peak <= -1 dBFS).

    .venv/bin/python experiments/recipe/low_pass.py [--corpus ../shared/data/dev-corpus] \
        [--out experiments/results/recipe/corpora/lowpass7k] [--cutoff-hz 7000]

Writes OUT/<same relative path> (16-bit FLAC) and OUT/protocol.csv (the input's rows). The corpus defaults to
$DEV_CORPUS, else ../shared/data/dev-corpus next to the repo.
"""
from __future__ import annotations

import csv
import sys
from pathlib import Path

import click
import numpy as np
import soundfile as sf
from scipy.signal import butter, sosfiltfilt

sys.path.insert(0, str(Path(__file__).resolve().parent))

from trim_silence import DEFAULT_CORPUS, REPO, level  # noqa: E402

DEFAULT_OUT = REPO / "experiments" / "results" / "recipe" / "corpora" / "lowpass7k"


def low_pass(wav: np.ndarray, sr: int, cutoff_hz: float = 7000.0, order: int = 10) -> np.ndarray:
    """wav: (T,) float at sr Hz -> (T,) float32, zero-phase Butterworth low-pass (-3 dB at cutoff_hz, then
    -60 dB/octave per pass, twice that after the forward-backward pass)."""
    if not 0 < cutoff_hz < sr / 2:
        raise ValueError(f"cutoff {cutoff_hz} Hz must lie between 0 and the Nyquist frequency {sr / 2} Hz")
    sos = butter(order, cutoff_hz, btype="low", fs=sr, output="sos")
    return sosfiltfilt(sos, wav).astype(np.float32)


@click.command()
@click.option("--corpus", default=DEFAULT_CORPUS, show_default=True, type=click.Path(file_okay=False),
              help="Corpus folder with protocol.csv (path relative to it). Env: DEV_CORPUS.")
@click.option("--out", default=str(DEFAULT_OUT), show_default=True, type=click.Path(file_okay=False))
@click.option("--cutoff-hz", default=7000.0, show_default=True, type=click.FloatRange(100, 7900))
def main(corpus: str, out: str, cutoff_hz: float) -> None:
    src, dst = Path(corpus), Path(out)
    proto = src / "protocol.csv"
    if not proto.is_file():
        raise click.UsageError(f"--corpus {corpus}: no protocol.csv there; expected the dev corpus folder")
    with open(proto, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        cols, rows = reader.fieldnames or [], list(reader)
    if "path" not in cols:
        raise click.UsageError(f"{proto}: no `path` column (columns: {cols})")
    for r in rows:
        wav, sr = sf.read(src / r["path"], dtype="float32", always_2d=True)
        dest = dst / r["path"]
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.stem + ".part.flac")
        try:
            filtered = low_pass(wav.mean(axis=1), sr, cutoff_hz)
        except ValueError as e:
            raise click.UsageError(f"{r['path']}: {e}") from None
        sf.write(tmp, level(filtered), sr, subtype="PCM_16")
        tmp.replace(dest)
    with open(dst / "protocol.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        w.writerows(rows)
    click.echo(f"{len(rows)} clips -> {dst}")


if __name__ == "__main__":
    main()

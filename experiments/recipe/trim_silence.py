"""Silence-equalised copy of a corpus: leading/trailing silence set to one length, long pauses shortened.

The cue-removal test of issue 28: if a detector learned "more silence = spoof", a copy in which every clip
has the same edge silence and no pause longer than `--max-pause-ms` takes that cue away. An energy VAD
(25 ms frames, 10 ms hop) marks a frame active when its energy is within `--threshold-db` of the clip's
loudest frame; inactive stretches between active ones that are longer than the maximum pause keep only
half the maximum after the speech before and half before the speech after (10 ms raised-cosine
cross-fade at each splice). Every clip is then levelled again like the corpus was (RMS -26 dBFS, sample
peak at most -1 dBFS), because the corpus levelled whole clips, silence included.

    .venv/bin/python experiments/recipe/trim_silence.py [--corpus ../shared/data/dev-corpus] \
        [--out experiments/results/recipe/corpora/trimmed]

Writes OUT/<same relative path>.flac (16-bit, the input's rate) and OUT/protocol.csv (the input's columns,
`duration_s` updated). The corpus defaults to $DEV_CORPUS, else ../shared/data/dev-corpus next to the repo.
"""
from __future__ import annotations

import csv
import os
import sys
from pathlib import Path

import click
import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from manifests.errors import UsageError  # noqa: E402

DEFAULT_CORPUS = os.environ.get("DEV_CORPUS", str(REPO.parent / "shared" / "data" / "dev-corpus"))
DEFAULT_OUT = REPO / "experiments" / "results" / "recipe" / "corpora" / "trimmed"
FRAME_S, HOP_S = 0.025, 0.010


def active_frames(wav: np.ndarray, sr: int, threshold_db: float) -> np.ndarray:
    """wav: (T,) float in [-1, 1] at sr Hz -> (F,) bool, frame f covers samples [f*hop, f*hop+frame)."""
    frame, hop = int(round(FRAME_S * sr)), int(round(HOP_S * sr))
    if len(wav) < frame:
        return np.ones(1, dtype=bool)
    n = 1 + (len(wav) - frame) // hop
    idx = np.arange(frame)[None, :] + hop * np.arange(n)[:, None]
    energy_db = 10 * np.log10(np.mean(wav[idx] ** 2, axis=1) + 1e-12)
    return energy_db > energy_db.max() - threshold_db


def speech_spans(active: np.ndarray, sr: int, n_samples: int) -> list[tuple[int, int]]:
    """Sample spans [start, end) of the runs of active frames, in order; a frame stands for the hop around its
    centre (a whole 25 ms frame would stretch every speech span up to 15 ms into the pause after it)."""
    frame, hop = int(round(FRAME_S * sr)), int(round(HOP_S * sr))
    edges = np.diff(np.concatenate([[0], active.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    centre = (frame - hop) // 2
    return [(0 if s == 0 else s * hop + centre, n_samples if e == len(active) else min(n_samples, e * hop + centre))
            for s, e in zip(starts, ends)]


def _splice(pieces: list[np.ndarray], fade: int) -> np.ndarray:
    """Join pieces with a raised-cosine cross-fade of `fade` samples (shorter where a piece is shorter)."""
    out = pieces[0]
    for p in pieces[1:]:
        f = min(fade, len(out), len(p))
        if f == 0:
            out = np.concatenate([out, p])
            continue
        ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(f) + 0.5) / f)
        mid = out[-f:] * (1 - ramp) + p[:f] * ramp
        out = np.concatenate([out[:-f], mid, p[f:]])
    return out


def trim_pauses(wav: np.ndarray, sr: int, threshold_db: float = 35.0, max_pause_s: float = 0.1,
                edge_s: float = 0.05, fade_s: float = 0.01) -> np.ndarray:
    """wav: (T,) float in [-1, 1] at sr Hz -> (T',) with `edge_s` of signal before the first and after the last
    active frame (zeros added where the clip has less) and every inactive stretch between active frames cut to
    at most `max_pause_s`. A clip with no inactive frame longer than that keeps its speech samples as is."""
    spans = speech_spans(active_frames(wav, sr, threshold_db), sr, len(wav))
    edge, half = int(round(edge_s * sr)), int(round(max_pause_s * sr / 2))
    fade = int(round(fade_s * sr))
    pieces, start = [], spans[0][0]
    for (s0, e0), (s1, e1) in zip(spans[:-1], spans[1:]):
        if s1 - e0 > 2 * half:      # a long pause: keep `half` after the speech before and `half` before the next
            pieces.append(wav[start:e0 + half])
            start = s1 - half
    pieces.append(wav[start:spans[-1][1]])
    body = _splice(pieces, fade)
    lead = wav[max(0, spans[0][0] - edge):spans[0][0]]
    tail = wav[spans[-1][1]:spans[-1][1] + edge]
    lead = np.concatenate([np.zeros(edge - len(lead)), lead])
    tail = np.concatenate([tail, np.zeros(edge - len(tail))])
    return np.concatenate([lead, body, tail]).astype(np.float32)


def level(wav: np.ndarray, rms_dbfs: float = -26.0, peak_dbfs: float = -1.0) -> np.ndarray:
    """Scale so the clip's RMS is rms_dbfs, but no sample peak above peak_dbfs (the corpus's own levelling)."""
    rms, peak = np.sqrt(np.mean(wav ** 2)), np.max(np.abs(wav))
    if rms == 0:
        return wav
    gain = min(10 ** (rms_dbfs / 20) / rms, 10 ** (peak_dbfs / 20) / peak)
    return (wav * gain).astype(np.float32)


def trim_corpus(corpus: Path, out: Path, **kw) -> int:
    """Write the trimmed copy of every protocol row of `corpus` under `out`; returns the number of clips."""
    proto = corpus / "protocol.csv"
    if not proto.is_file():
        raise UsageError(f"--corpus {corpus}: no protocol.csv there; expected the dev corpus folder")
    with open(proto, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        cols, rows = reader.fieldnames or [], list(reader)
    if "path" not in cols:
        raise UsageError(f"{proto}: no `path` column (columns: {cols})")
    for r in rows:
        wav, sr = sf.read(corpus / r["path"], dtype="float32", always_2d=True)
        trimmed = level(trim_pauses(wav.mean(axis=1), sr, **kw))
        dest = out / r["path"]
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.stem + ".part.flac")
        sf.write(tmp, trimmed, sr, subtype="PCM_16")
        tmp.replace(dest)
        if "duration_s" in r:
            r["duration_s"] = f"{len(trimmed) / sr:.3f}"
    with open(out / "protocol.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        w.writerows(rows)
    return len(rows)


@click.command()
@click.option("--corpus", default=DEFAULT_CORPUS, show_default=True, type=click.Path(file_okay=False),
              help="Corpus folder with protocol.csv (path relative to it). Env: DEV_CORPUS.")
@click.option("--out", default=str(DEFAULT_OUT), show_default=True, type=click.Path(file_okay=False),
              help="Output folder (FLAC + protocol.csv).")
@click.option("--threshold-db", default=35.0, show_default=True, type=click.FloatRange(1, 100),
              help="A frame is speech when its energy is within this of the loudest frame.")
@click.option("--max-pause-ms", default=100.0, show_default=True, type=click.FloatRange(0, 10000),
              help="Longest pause kept between speech frames.")
@click.option("--edge-ms", default=50.0, show_default=True, type=click.FloatRange(0, 10000),
              help="Silence kept before the first and after the last speech frame.")
def main(corpus: str, out: str, threshold_db: float, max_pause_ms: float, edge_ms: float) -> None:
    try:
        n = trim_corpus(Path(corpus), Path(out), threshold_db=threshold_db, max_pause_s=max_pause_ms / 1000,
                        edge_s=edge_ms / 1000)
    except UsageError as e:
        raise click.UsageError(str(e)) from None
    click.echo(f"{n} clips -> {out}")


if __name__ == "__main__":
    main()

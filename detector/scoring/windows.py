"""Scoring audio with a detector: sliding windows of the training crop, mean of window logits.

A file whose header declares more than `audiostream.STREAM_ABOVE` samples is read as a stream
of blocks and cut into the same windows on the fly, so scoring a two-hour recording holds a few
windows in memory, not the recording.
"""
from __future__ import annotations

from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
import torch
from tqdm import tqdm

from manifests import storage
from manifests.audio import MAX_SECONDS, AudioError, load_audio
from manifests.audiostream import STREAM_ABOVE, is_long, stream

from ..training.data import fix_length, windows
from ..model.detector import Detector


MIN_SECONDS = 0.025  # one front-end frame (XLS-R: 400 samples at 16 kHz); shorter clips carry no evidence


def streamed_windows(blocks: Iterable[np.ndarray], length: int, pad: bool = True) -> Iterator[np.ndarray]:
    """`data.windows` of a signal given as consecutive blocks: (length,) windows at 0, length, 2*length...
    plus one aligned to the end when they do not reach it; one repeat-padded window for a short signal
    (pad=False: the short signal as it is). Memory: two windows."""
    buf, pos, start = np.zeros(0, np.float32), 0, 0  # buf holds the signal from `start` on; `pos`: next window
    for b in blocks:
        buf = np.concatenate([buf, b])
        while start + buf.shape[0] >= pos + length:
            yield buf[pos - start:pos - start + length].copy()
            pos += length
            keep = max(0, pos - length) - start  # the last window stays, for a tail window that overlaps it
            buf, start = buf[keep:], start + keep
    end = start + buf.shape[0]
    if end <= length:
        if end > 0 and pos == 0:
            yield fix_length(buf, length) if pad else buf.copy()
    elif pos < end:
        yield buf[buf.shape[0] - length:].copy()


def _clip_windows(path: str, crop: int, sample_rate: int, max_seconds: float | None,
                  stream_above: int, pad: bool = True) -> Iterator[np.ndarray]:
    """The windows of one file (raises AudioError, possibly after some windows)."""
    if is_long(path, stream_above):
        yield from streamed_windows(stream(path, sample_rate, max_seconds), crop, pad)
        return
    wav, _ = load_audio(path, sr=sample_rate, max_seconds=max_seconds)
    if wav.shape[0] < MIN_SECONDS * sample_rate:
        raise AudioError(f"{storage.name(path)} is too short to score ({wav.shape[0]} samples < {MIN_SECONDS * 1000:g} ms)")
    yield from windows(wav, crop, pad=pad)


def _forward(model: Detector | Callable, embeddings: bool = False) -> Callable[[np.ndarray], tuple]:
    """(B, crop) float32 windows -> (logits (B,), layer weights (B, L)) as float64, for a PyTorch detector or
    for a scorer that is already such a function (an exported ONNX model, see onnx_export.OnnxDetector);
    with `embeddings` (a PyTorch detector only) also the L2-normalised embeddings (B, E)."""
    if not isinstance(model, torch.nn.Module):
        if embeddings:
            raise TypeError("embeddings need a PyTorch Detector, not an exported scorer")
        return lambda batch: tuple(np.asarray(a, np.float64) for a in model(batch))
    model.eval()
    device = next(model.parameters()).device

    def forward(batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out = model(torch.from_numpy(batch).to(device))
        got = out.logit.double().cpu().numpy(), out.layer_weights.double().cpu().numpy()
        return (*got, out.embedding.double().cpu().numpy()) if embeddings else got

    return forward


@torch.no_grad()
def score_paths(model: Detector | Callable, paths: Sequence[str], crop: int, sample_rate: int = 16000,
                batch_size: int = 16, progress: bool = False, desc: str = "scoring", max_seconds: float | None = MAX_SECONDS,
                stream_above: int = STREAM_ABOVE,
                refused: dict[int, str] | None = None, pad: bool = True, embeddings: bool = False) -> tuple:
    """Score each file. Returns (scores (N,) float64 with NaN for files not scored, {index: error},
    mean layer weights (L,) over all windows). A clip longer than `crop` is covered by non-overlapping
    windows (the tail window aligned to the end); a shorter one is repeat-padded to `crop`, unless it
    is shorter than MIN_SECONDS: that one is an error, since repeating it would invent a signal. With
    pad=False (models of any input length) a shorter clip is scored as it is, in a batch of its own length.
    A header declaring more than `max_seconds` seconds is an error before decoding; files over
    `stream_above` samples are streamed (same windows, bounded memory). `refused` ({index: reason}) are
    errors without being opened. `model` is a Detector, or a function of a window batch as `_forward` says.
    embeddings=True (a Detector) appends a 4th result from the same forward pass: (N, E) float64, each file's
    mean window embedding (NaN rows for files not scored), for training diagnostics."""
    forward = _forward(model, embeddings)
    sums, counts = np.zeros(len(paths)), np.zeros(len(paths))
    esums: np.ndarray | None = None
    errors: dict[int, str] = dict(refused or {})
    pending: list[tuple[int, np.ndarray]] = []
    wsum, wcount = None, 0

    def flush() -> None:
        nonlocal wsum, wcount, esums
        owners = [o for o, _ in pending]
        logits, weights, *emb = forward(np.stack([w for _, w in pending]))
        if emb and esums is None:
            esums = np.zeros((len(paths), emb[0].shape[1]))
        for k, (o, logit) in enumerate(zip(owners, logits)):
            sums[o] += logit
            counts[o] += 1
            if emb:
                esums[o] += emb[0][k]
        lw = weights.sum(0)
        wsum, wcount = (lw if wsum is None else wsum + lw), wcount + len(owners)
        pending.clear()

    for i, path in enumerate(tqdm(paths, desc=desc, disable=not progress, unit="clip")):
        if i in errors:
            continue
        try:
            for w in _clip_windows(path, crop, sample_rate, max_seconds, stream_above, pad):
                if pending and pending[0][1].shape != w.shape:
                    flush()  # windows of unpadded clips differ in length: one batch per length
                pending.append((i, w))
                if len(pending) >= max(1, batch_size):
                    flush()
        except AudioError as e:  # a stream can fail late: windows already scored are dropped below
            errors[i] = str(e)
    if pending:
        flush()
    with np.errstate(invalid="ignore", divide="ignore"):
        scores = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    scores[list(errors)] = np.nan
    mean_weights = (wsum / max(wcount, 1)) if wsum is not None else np.zeros(0)
    if not embeddings:
        return scores, errors, mean_weights
    emb = np.full((len(paths), 0 if esums is None else esums.shape[1]), np.nan)
    if esums is not None:
        emb = esums / np.maximum(counts, 1)[:, None]
        emb[~np.isfinite(scores)] = np.nan
    return scores, errors, mean_weights, emb

"""Scoring audio with a detector: sliding windows of the training crop, mean of window logits."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from tqdm import tqdm

from manifests import storage
from manifests.audio import AudioError, load_audio

from .data import windows
from .model import Detector


MIN_SECONDS = 0.025  # one front-end frame (XLS-R: 400 samples at 16 kHz); shorter clips carry no evidence


@torch.no_grad()
def score_paths(model: Detector, paths: Sequence[str], crop: int, sample_rate: int = 16000, batch_size: int = 16,
                progress: bool = False, desc: str = "scoring") -> tuple[np.ndarray, dict[int, str], np.ndarray]:
    """Score each file. Returns (scores (N,) float64 with NaN for files not scored, {index: error},
    mean layer weights (L,) over all windows). A clip longer than `crop` is covered by non-overlapping
    windows (the tail window aligned to the end); a shorter one is repeat-padded to `crop`, unless it
    is shorter than MIN_SECONDS: that one is an error, since repeating it would invent a signal."""
    model.eval()
    device = next(model.parameters()).device
    sums, counts = np.zeros(len(paths)), np.zeros(len(paths))
    errors: dict[int, str] = {}
    pending: list[tuple[int, np.ndarray]] = []
    wsum, wcount = None, 0

    def flush() -> None:
        nonlocal wsum, wcount
        owners = [o for o, _ in pending]
        out = model(torch.from_numpy(np.stack([w for _, w in pending])).to(device))
        for o, logit in zip(owners, out.logit.double().cpu().numpy()):
            sums[o] += logit
            counts[o] += 1
        lw = out.layer_weights.double().sum(0).cpu().numpy()
        wsum, wcount = (lw if wsum is None else wsum + lw), wcount + len(owners)
        pending.clear()

    for i, path in enumerate(tqdm(paths, desc=desc, disable=not progress, unit="clip")):
        try:
            wav, _ = load_audio(path, sr=sample_rate)
        except AudioError as e:
            errors[i] = str(e)
            continue
        if wav.shape[0] < MIN_SECONDS * sample_rate:
            errors[i] = f"{storage.name(path)} is too short to score ({wav.shape[0]} samples < {MIN_SECONDS * 1000:g} ms)"
            continue
        for w in windows(wav, crop):
            pending.append((i, w))
            if len(pending) >= batch_size:
                flush()
    if pending:
        flush()
    with np.errstate(invalid="ignore", divide="ignore"):
        scores = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    return scores, errors, (wsum / max(wcount, 1)) if wsum is not None else np.zeros(0)

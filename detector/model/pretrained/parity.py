"""The fixed inputs on which hardspoof's pretrained countermeasures are checked against their reference code.

Both sides use these exact arrays: `tools/reference_scores/` runs the upstream code on them once (its scores
are committed under tests/detector/model/fixtures/pretrained/), and the parity tests run hardspoof's modules
on them again. Deterministic for a given numpy (PCG64 streams are stable across versions).
"""
from __future__ import annotations

import numpy as np

# samples at 16 kHz: shorter than the 3 s and 4.04 s crops, between them, at them, and longer than both
LENGTHS = (9_000, 16_000, 27_500, 48_000, 52_311, 64_600, 71_000, 96_000)


def parity_clips(lengths: tuple[int, ...] = LENGTHS, seed: int = 20261207) -> list[np.ndarray]:
    """One float32 clip in [-1, 1] per length: a voiced, formant-shaped pulse train with a gliding pitch,
    syllable-rate amplitude envelope, short pauses and a little noise, so the models see speech-like
    structure (pure noise saturates most of them)."""
    rng = np.random.default_rng(seed)
    clips = []
    for n in lengths:
        t = np.arange(n) / 16000.0
        f0 = rng.uniform(90, 220) * (1 + 0.15 * np.sin(2 * np.pi * rng.uniform(0.3, 1.5) * t))
        phase = 2 * np.pi * np.cumsum(f0) / 16000.0
        voiced = sum(np.sin(k * phase) / k for k in range(1, 30))
        for fc in rng.uniform([300, 900, 2200], [800, 1800, 3200]):  # crude formants: resonant smoothing
            voiced = voiced + 0.5 * np.sin(2 * np.pi * fc * t) * np.abs(np.sin(phase / 2))
        env = np.clip(np.sin(2 * np.pi * rng.uniform(3, 6) * t + rng.uniform(0, np.pi)), 0, None) ** 0.5
        x = voiced * env + 0.02 * rng.standard_normal(n)
        x = x / (np.abs(x).max() + 1e-9) * rng.uniform(0.3, 0.9)
        clips.append(x.astype(np.float32))
    return clips

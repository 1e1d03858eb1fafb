"""Trivial per-clip cues that can separate bona fide from spoof besides the generator (issue 28, section 2).

Pure functions of a clip (no I/O). Every feature is a float; units are in the name:
silence (`quiet_pct`, `lead_s`, `trail_s`, `floor10_dbfs`, `zero_pct`), bandwidth (`hf6_db`, `rolloff99_hz`),
level (`rms_dbfs`, `peak_dbfs`, `dc_dbfs`), codec history (`band7k_db`, `edge50_hz`, `holes_pct`) and `duration_s`.
"""
from __future__ import annotations

import numpy as np

N_FFT, HOP = 512, 160            # 32 ms Hann window, 10 ms hop at 16 kHz
FRAME, VAD_HOP = 400, 160        # 25 ms / 10 ms energy frames, as trim_silence.py and the corpus build

GROUPS = {                       # feature groups for the trivial classifier
    "silence": ["quiet_pct", "lead_s", "trail_s", "floor10_dbfs", "zero_pct"],
    "bandwidth": ["hf6_db", "rolloff99_hz"],
    "codec": ["band7k_db", "edge50_hz", "holes_pct"],
    "level": ["rms_dbfs", "peak_dbfs", "dc_dbfs"],
    "duration": ["duration_s"],
}
FEATURES = [f for g in GROUPS.values() for f in g]


def frame_energy_db(wav: np.ndarray) -> np.ndarray:
    """wav: (T,) float at 16 kHz -> (F,) energy of 25 ms frames every 10 ms, dB re. full scale."""
    if len(wav) < FRAME:
        wav = np.pad(wav, (0, FRAME - len(wav)))
    n = 1 + (len(wav) - FRAME) // VAD_HOP
    idx = np.arange(FRAME)[None, :] + VAD_HOP * np.arange(n)[:, None]
    return 10 * np.log10(np.mean(wav[idx] ** 2, axis=1) + 1e-12)


def power_spectrogram(wav: np.ndarray) -> np.ndarray:
    """wav: (T,) float at 16 kHz -> (frames, N_FFT // 2 + 1) power of Hann-windowed frames."""
    if len(wav) < N_FFT:
        wav = np.pad(wav, (0, N_FFT - len(wav)))
    n = 1 + (len(wav) - N_FFT) // HOP
    idx = np.arange(N_FFT)[None, :] + HOP * np.arange(n)[:, None]
    return np.abs(np.fft.rfft(wav[idx] * np.hanning(N_FFT), axis=1)) ** 2


def freqs(sr: int) -> np.ndarray:
    """(N_FFT // 2 + 1,) bin centre frequencies in Hz."""
    return np.fft.rfftfreq(N_FFT, 1 / sr)


def ltas_db(wav: np.ndarray) -> np.ndarray:
    """Long-term average spectrum: (N_FFT // 2 + 1,) mean power over all frames, dB re. full scale."""
    return 10 * np.log10(power_spectrogram(wav).mean(axis=0) + 1e-20)


def spectral_holes_pct(power: np.ndarray, energy_db: np.ndarray, f: np.ndarray, lo: float = 2000.0,
                       hi: float = 7500.0, depth_db: float = 20.0) -> float:
    """% of time-frequency bins in [lo, hi) Hz of speech frames (within 35 dB of the loudest) that lie more
    than depth_db below the median of their 9 neighbouring bins: the zeroed bands a low-bitrate Vorbis leaves."""
    k = min(len(power), len(energy_db))
    speech = power[:k][energy_db[:k] > energy_db.max() - 35]
    band = (f >= lo) & (f < hi)
    if len(speech) == 0:
        return 0.0
    p_db = 10 * np.log10(speech + 1e-20)
    pad = np.pad(p_db, ((0, 0), (4, 4)), mode="edge")
    local = np.median(np.stack([pad[:, i:i + p_db.shape[1]] for i in range(9)]), axis=0)
    return float(100 * np.mean((p_db < local - depth_db)[:, band]))


def clip_features(wav: np.ndarray, sr: int) -> dict[str, float]:
    """wav: (T,) float in [-1, 1] at sr Hz (16 kHz expected) -> {feature: value}, see the module docstring."""
    e = frame_energy_db(wav)
    active = np.flatnonzero(e > e.max() - 35)
    power = power_spectrogram(wav)
    lt = power.mean(axis=0)
    f = freqs(sr)
    total = lt.sum() + 1e-20
    cum = np.cumsum(lt) / total
    lt_db = 10 * np.log10(lt + 1e-20)
    return {
        "quiet_pct": float(100 * np.mean(e < e.max() - 40)),
        "lead_s": float(active[0] * VAD_HOP / sr),
        "trail_s": float(max(0, len(wav) - (active[-1] * VAD_HOP + FRAME)) / sr),
        "floor10_dbfs": float(np.percentile(e, 10)),          # level of the quietest frames: the pauses' floor
        "zero_pct": float(100 * np.mean(np.abs(wav) < 0.5 / 32768)),   # digital silence (16-bit zeros)
        "hf6_db": float(10 * np.log10(lt[f >= 6000].sum() / total + 1e-20)),
        "rolloff99_hz": float(f[np.searchsorted(cum, 0.99)]),
        "band7k_db": float(10 * np.log10(lt[(f >= 7000) & (f < 7800)].sum() / total + 1e-20)),
        "edge50_hz": float(f[np.flatnonzero(lt_db > lt_db.max() - 50)[-1]]),
        "holes_pct": spectral_holes_pct(power, e, f),
        "rms_dbfs": float(20 * np.log10(np.sqrt(np.mean(wav ** 2)) + 1e-12)),
        "peak_dbfs": float(20 * np.log10(np.max(np.abs(wav)) + 1e-12)),
        "dc_dbfs": float(20 * np.log10(abs(np.mean(wav)) + 1e-12)),
        "duration_s": float(len(wav) / sr),
    }

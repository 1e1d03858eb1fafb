"""How close a reconstruction is to its original ("hardness"): pure numpy functions of arrays.

lsd_db      log-spectral distance, dB: per frame, the RMS over frequency of
            10*log10(P_ref) - 10*log10(P_est) (power spectra, Hann window, n_fft 512 at 16 kHz,
            i.e. 32 ms, scaled with sr; hop n_fft/4; frames fully inside the signal; power floored
            at 1e-10), averaged over frames. 0 = identical spectra; phase is ignored.
snr_db      10*log10(sum ref^2 / sum (ref - est)^2); inf when identical. Meaningless for
            reconstructions that invent their own phase (Griffin-Lim, diffusion): use lsd_db.
harmonicity mean cepstral peak prominence in the 60-400 Hz pitch range over the louder half
            of the frames: high for voiced speech, low for noise or smeared spectra.
"""
from __future__ import annotations

import numpy as np

_FLOOR = 1e-10


def _frames(x: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    if x.shape[0] < n_fft:
        x = np.pad(x, (0, n_fft - x.shape[0]))
    n = 1 + (x.shape[0] - n_fft) // hop
    return np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop][:n]


def power_spectrogram(x: np.ndarray, n_fft: int) -> np.ndarray:
    """(frames, n_fft//2+1) power spectra of a 1-D signal."""
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    return np.abs(np.fft.rfft(_frames(x, n_fft, n_fft // 4) * np.hanning(n_fft), axis=-1)) ** 2


def _n_fft(sr: int) -> int:
    return int(2 ** round(np.log2(512 * sr / 16000)))


def lsd_db(ref: np.ndarray, est: np.ndarray, sr: int) -> float:
    """Log-spectral distance in dB between two equal-length (T,) signals at sr Hz."""
    ref, est = np.asarray(ref).reshape(-1), np.asarray(est).reshape(-1)
    if ref.shape != est.shape:
        raise ValueError(f"lsd_db needs equal lengths, got {ref.shape[0]} and {est.shape[0]} samples")
    n_fft = _n_fft(sr)
    diff = 10 * (np.log10(power_spectrogram(ref, n_fft) + _FLOOR) - np.log10(power_spectrogram(est, n_fft) + _FLOOR))
    return float(np.mean(np.sqrt(np.mean(diff ** 2, axis=-1))))


def snr_db(ref: np.ndarray, est: np.ndarray) -> float:
    """Signal-to-noise ratio of est against ref in dB (inf when identical)."""
    ref = np.asarray(ref, dtype=np.float64).reshape(-1)
    est = np.asarray(est, dtype=np.float64).reshape(-1)
    if ref.shape != est.shape:
        raise ValueError(f"snr_db needs equal lengths, got {ref.shape[0]} and {est.shape[0]} samples")
    noise = float(np.sum((ref - est) ** 2))
    signal = float(np.sum(ref ** 2))
    if noise == 0:
        return float("inf")
    return float(10 * np.log10(max(signal, _FLOOR) / noise))


def harmonicity(wav: np.ndarray, sr: int) -> float:
    """Mean cepstral peak prominence (cepstrum of the dB spectrum) over the louder half of 64 ms frames, pitch 60-400 Hz."""
    n_fft = 2 * _n_fft(sr)
    power = power_spectrogram(wav, n_fft)
    if power.shape[0] == 0:
        return 0.0
    loud = power.sum(axis=1) >= np.median(power.sum(axis=1))
    ceps = np.fft.irfft(10 * np.log10(power[loud] + _FLOOR), axis=-1)
    lo, hi = int(sr / 400), int(sr / 60)
    band = ceps[:, lo:hi + 1]
    q = np.arange(lo, hi + 1)
    # prominence above the least-squares line through the cepstrum in the pitch range (Hillenbrand's CPP)
    slope, icpt = np.polyfit(q, band.T, 1)
    peak = band.argmax(axis=1)
    prom = band[np.arange(band.shape[0]), peak] - (slope * q[peak] + icpt)
    return float(np.mean(prom))

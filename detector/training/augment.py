"""Training-time augmentation: additive noise at 0-15 dB SNR, RIR convolution, optional RawBoost.

Noise and RIRs come from folders when given (every audio file under the folder, drawn per seed and
loaded lazily), else are synthesised (coloured noise; exponentially decaying noise as an impulse
response), so augmentation works on a bare machine.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from manifests.audio import AudioError, load_audio

from .data import audio_files


def add_noise(wav: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """Mix (T,) `noise` (tiled/cropped to T) into (T,) `wav` at `snr_db` dB."""
    noise = np.resize(noise, wav.shape)
    p_sig = float(np.mean(wav ** 2)) + 1e-10
    p_noise = float(np.mean(noise ** 2)) + 1e-10
    return (wav + noise * np.sqrt(p_sig / (p_noise * 10 ** (snr_db / 10)))).astype(np.float32)


def convolve_rir(wav: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """Reverberate (T,) `wav` with impulse response (K,); output (T,), peak level kept."""
    from scipy import signal  # here, not at the top: scipy.signal costs ~70 MiB and 1 s for a run without augmentation

    rir = rir / (np.linalg.norm(rir) + 1e-10)
    out = signal.fftconvolve(wav, rir)[: wav.shape[0]]
    return (out * (np.abs(wav).max() + 1e-10) / (np.abs(out).max() + 1e-10)).astype(np.float32)


def synthetic_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """(n,) coloured noise with a random spectral slope (white to brown)."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(spec.shape[0]) + 1.0
    return np.fft.irfft(spec / f ** rng.uniform(0, 1), n).astype(np.float32)


def synthetic_rir(sr: int, rng: np.random.Generator) -> np.ndarray:
    """An exponentially decaying noise impulse response, RT60 0.1-0.8 s."""
    rt60 = rng.uniform(0.1, 0.8)
    t = np.arange(int(rt60 * sr)) / sr
    rir = rng.standard_normal(t.shape) * np.exp(-6.9 * t / rt60)
    rir[0] = 1.0
    return rir.astype(np.float32)


def rawboost(wav: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    """RawBoost (Tak et al. 2022), series of its three algorithms, compact:
    linear/non-linear convolutive noise (random notch-filter bank on x, x^2, x^3), impulsive
    signal-dependent noise on ~10% samples, and stationary coloured additive noise at 10-40 dB SNR."""
    from scipy import signal

    y = np.zeros_like(wav)
    for power in (1, 2, 3):  # LnL: a random FIR band-stop bank applied to each polynomial term
        centre = rng.uniform(0.05, 0.45)
        b = signal.firwin(31, [max(centre - 0.04, 0.01), min(centre + 0.04, 0.49)], pass_zero="bandstop", fs=1.0)
        y += signal.lfilter(b, 1.0, wav ** power) / power
    y = y / (np.abs(y).max() + 1e-10) * (np.abs(wav).max() + 1e-10)
    idx = rng.random(y.shape) < 0.1  # ISD: impulsive, signal-dependent
    y[idx] += y[idx] * rng.uniform(-2, 2, idx.sum()) * 0.5
    y = add_noise(y, synthetic_noise(y.shape[0], rng), rng.uniform(10, 40))  # SSI
    return np.clip(y, -1, 1).astype(np.float32)


class Bank:
    """Every audio file under a folder (recursively, e.g. all of MUSAN or an RIR corpus), drawn by index
    and loaded lazily through a bounded LRU cache; an unreadable file draws as None (the caller falls
    back to a synthetic signal)."""

    def __init__(self, folder: str, sr: int, cache_size: int = 64):
        self.files, self.sr, self.cache_size = audio_files(folder), sr, cache_size
        self._cache: OrderedDict[int, np.ndarray | None] = OrderedDict()

    def __len__(self) -> int:
        return len(self.files)

    def draw(self, rng: np.random.Generator) -> np.ndarray | None:
        i = int(rng.integers(len(self.files)))
        if i in self._cache:
            self._cache.move_to_end(i)
            return self._cache[i]
        try:
            wav = load_audio(self.files[i], sr=self.sr)[0]
        except AudioError:
            wav = None
        self._cache[i] = wav
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return wav


class Augmenter:
    """Callable (wav (T,), rng) -> (T,): noise and reverberation, each with probability `p`."""

    def __init__(self, sr: int = 16000, noise_dir: str | None = None, rir_dir: str | None = None,
                 snr_db: tuple[float, float] = (0.0, 15.0), p: float = 0.5, use_rawboost: bool = False,
                 cache_size: int = 64):
        self.sr, self.snr, self.p, self.use_rawboost = sr, snr_db, p, use_rawboost
        self.noises = Bank(noise_dir, sr, cache_size) if noise_dir else None
        self.rirs = Bank(rir_dir, sr, cache_size) if rir_dir else None

    def __call__(self, wav: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if self.use_rawboost:
            wav = rawboost(wav, self.sr, rng)
        if rng.random() < self.p:
            rir = self.rirs.draw(rng) if self.rirs else None
            wav = convolve_rir(wav, rir if rir is not None and len(rir) else synthetic_rir(self.sr, rng))
        if rng.random() < self.p:
            noise = self.noises.draw(rng) if self.noises else None
            if noise is None or not len(noise):
                noise = synthetic_noise(wav.shape[0], rng)
            if noise.shape[0] > wav.shape[0]:
                start = rng.integers(0, noise.shape[0] - wav.shape[0] + 1)
                noise = noise[start:start + wav.shape[0]]
            wav = add_noise(wav, noise, rng.uniform(*self.snr))
        return np.clip(wav, -1, 1).astype(np.float32)

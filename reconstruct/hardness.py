"""How close a reconstruction is to its original ("hardness"): pure numpy functions of arrays, and
`Hardness`, the same two distances accumulated over a long signal fed in pieces (bounded memory).

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


class Hardness:
    """snr_db and lsd_db of a long pair of signals fed in pieces: memory is one piece plus one
    FFT frame, whatever the length. `add(ref, est)` takes equal-length consecutive (T,) pieces at
    sr Hz; the results equal those of the whole signals (up to float summation order).
    """

    FRAMES_PER_STEP = 4096  # FFT frames per batch when a large piece is added

    def __init__(self, sr: int, lsd: bool = True) -> None:
        self.lsd = lsd  # False: snr_db only (no FFTs)
        self.n_fft = _n_fft(sr)
        self.hop = self.n_fft // 4
        self.window = np.hanning(self.n_fft)
        self.signal = self.noise = 0.0          # sums of ref^2 and (ref - est)^2
        self.lsd_sum, self.frames, self.total = 0.0, 0, 0
        self.tail_ref = self.tail_est = np.zeros(0)  # samples from the next frame's start on

    def _lsd_frames(self, ref: np.ndarray, est: np.ndarray) -> None:
        n = 1 + (ref.shape[0] - self.n_fft) // self.hop
        if n <= 0:
            return
        for i in range(0, n, self.FRAMES_PER_STEP):
            span = slice(i * self.hop, (min(n, i + self.FRAMES_PER_STEP) - 1) * self.hop + self.n_fft)
            pr = np.abs(np.fft.rfft(_frames(ref[span], self.n_fft, self.hop) * self.window, axis=-1)) ** 2
            pe = np.abs(np.fft.rfft(_frames(est[span], self.n_fft, self.hop) * self.window, axis=-1)) ** 2
            diff = 10 * (np.log10(pr + _FLOOR) - np.log10(pe + _FLOOR))
            self.lsd_sum += float(np.sum(np.sqrt(np.mean(diff ** 2, axis=-1))))
        self.frames += n

    def add(self, ref: np.ndarray, est: np.ndarray) -> None:
        """Append equal-length (T,) pieces of the reference and the estimate."""
        ref = np.asarray(ref, dtype=np.float64).reshape(-1)
        est = np.asarray(est, dtype=np.float64).reshape(-1)
        if ref.shape != est.shape:
            raise ValueError(f"hardness needs equal lengths, got {ref.shape[0]} and {est.shape[0]} samples")
        self.signal += float(np.sum(ref ** 2))
        self.noise += float(np.sum((ref - est) ** 2))
        self.total += ref.shape[0]
        if not self.lsd:
            return
        ref, est = np.concatenate([self.tail_ref, ref]), np.concatenate([self.tail_est, est])
        self._lsd_frames(ref, est)
        n = max(0, 1 + (ref.shape[0] - self.n_fft) // self.hop)
        self.tail_ref, self.tail_est = ref[n * self.hop:], est[n * self.hop:]

    def snr_db(self) -> float:
        if self.noise == 0:
            return float("inf")
        return float(10 * np.log10(max(self.signal, _FLOOR) / self.noise))

    def lsd_db(self) -> float:
        if self.frames == 0:  # shorter than one frame: the whole (zero-padded) signal is one frame
            ref, est = np.pad(self.tail_ref, (0, self.n_fft - self.tail_ref.shape[0])), \
                np.pad(self.tail_est, (0, self.n_fft - self.tail_est.shape[0]))
            self._lsd_frames(ref, est)
        return float(self.lsd_sum / self.frames) if self.frames else float("nan")


def _pair(ref: np.ndarray, est: np.ndarray, sr: int, what: str, lsd: bool = True) -> Hardness:
    ref, est = np.asarray(ref).reshape(-1), np.asarray(est).reshape(-1)
    if ref.shape != est.shape:
        raise ValueError(f"{what} needs equal lengths, got {ref.shape[0]} and {est.shape[0]} samples")
    h = Hardness(sr, lsd)
    step = 1 << 20  # samples per piece: float64 copies stay at 8 MB
    for i in range(0, ref.shape[0], step):
        h.add(ref[i:i + step], est[i:i + step])
    return h


def lsd_db(ref: np.ndarray, est: np.ndarray, sr: int) -> float:
    """Log-spectral distance in dB between two equal-length (T,) signals at sr Hz (computed in pieces)."""
    return _pair(ref, est, sr, "lsd_db").lsd_db()


def snr_db(ref: np.ndarray, est: np.ndarray) -> float:
    """Signal-to-noise ratio of est against ref in dB (inf when identical; computed in pieces)."""
    return _pair(ref, est, 16000, "snr_db", lsd=False).snr_db()


def snr_lsd_db(ref: np.ndarray, est: np.ndarray, sr: int) -> tuple[float, float]:
    """(snr_db, lsd_db) of two equal-length (T,) signals at sr Hz in one pass."""
    h = _pair(ref, est, sr, "hardness")
    return h.snr_db(), h.lsd_db()


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

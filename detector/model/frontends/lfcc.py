"""LFCC front-end of the ASVspoof 2019/2021 LFCC-LCNN baseline (fixed, nothing trainable).

Matches the `LFCC` class of Xin Wang's project-NN-Pytorch-scripts (`sandbox/util_frontend.py`), which
the ASVspoof 2021 LFCC-LCNN baseline builds as LFCC(320, 160, 512, 16000, 20, with_energy=True):
pre-emphasis 0.97 (first sample kept) -> STFT with a 320-sample (20 ms) periodic Hamming window,
160-sample (10 ms) hop, 512-point FFT, centred frames with zero padding -> power |X|^2 -> 20 linearly
spaced triangular filters over 0..8 kHz -> log10(. + eps) -> orthonormal DCT-II, 20 coefficients ->
c0 replaced by the log10 frame energy (sum |X|^2 / 512) -> delta and delta-delta, each the difference
x[t+1] - x[t-1] with the edge frames repeated (no 1/2 factor) -> 60 dims.
Like the reference, no mean/variance normalisation is applied here: the back-end's first layer
(a Linear + BatchNorm in AASIST, mean/std pooling + MLP in `linear`) takes the raw scale.
Frames: 1 + T // 160 (100 frames/s): 101 for 16,000 samples, 404 for 64,600.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from manifests.errors import UsageError


def linear_filterbank(n_fft: int, sample_rate: int, n_filters: int) -> torch.Tensor:
    """Triangular filters on linearly spaced edges over 0..sr/2 -> (n_fft // 2 + 1, n_filters) weights.

    Filter k rises from edge k to 1 at edge k+1 and falls to 0 at edge k+2 (n_filters + 2 edges);
    computed in float32 like the reference's torch.linspace so bin weights agree to the last bit.
    """
    freqs = (sample_rate / 2) * torch.linspace(0, 1, n_fft // 2 + 1)                  # (K,) Hz
    edges = torch.linspace(0, float(freqs.max()), n_filters + 2)                     # (n_filters + 2,) Hz
    lo, mid, hi = edges[:-2], edges[1:-1], edges[2:]
    rise = (freqs[:, None] - lo) / (mid - lo)
    fall = (hi - freqs[:, None]) / (hi - mid)
    return torch.minimum(rise, fall).clamp(min=0.0)


def dct_matrix(n: int, keep: int) -> torch.Tensor:
    """Orthonormal DCT-II as a (n, keep) matrix: features (.., n) @ it = the first `keep` coefficients."""
    k = torch.arange(keep, dtype=torch.float64)
    t = torch.arange(n, dtype=torch.float64)
    m = torch.cos(math.pi * (2 * t[:, None] + 1) * k[None, :] / (2 * n)) * math.sqrt(2.0 / n)
    m[:, 0] /= math.sqrt(2.0)
    return m.float()


def delta(x: torch.Tensor) -> torch.Tensor:
    """(B, T, D) -> (B, T, D): x[t+1] - x[t-1] along time, edge frames repeated (the reference's delta)."""
    pad = torch.cat([x[:, :1], x, x[:, -1:]], dim=1)
    return pad[:, 2:] - pad[:, :-2]


class LFCCFrontend(nn.Module):
    """wav (B, T) at 16 kHz -> LFCC + delta + delta-delta (B, 1, T // hop + 1, 3 * n_coef)."""

    map_channels = None  # a plain feature sequence: the back-end projects and encodes it
    trainable = pretrained = False  # no weights at all

    def __init__(self, sample_rate: int = 16000, win_length: int = 320, hop_length: int = 160, n_fft: int = 512,
                 n_filters: int = 20, n_coef: int = 20, preemphasis: float = 0.97, with_energy: bool = True):
        super().__init__()
        if not 0 < n_coef <= n_filters:
            raise UsageError(f"LFCC n_coef={n_coef} must be in 1..n_filters={n_filters}")
        if not 0 < win_length <= n_fft or hop_length <= 0:
            raise UsageError(f"LFCC needs 0 < win_length ({win_length}) <= n_fft ({n_fft}) and hop_length > 0")
        self.hop, self.win_length, self.n_fft = hop_length, win_length, n_fft
        self.preemphasis, self.with_energy = preemphasis, with_energy
        self.num_layers, self.dim = 1, 3 * n_coef
        # buffers, not parameters: nothing to train or checkpoint, but they follow .to(device)
        self.register_buffer("window", torch.hamming_window(win_length), persistent=False)  # periodic, as reference
        self.register_buffer("fbank", linear_filterbank(n_fft, sample_rate, n_filters), persistent=False)
        self.register_buffer("dct", dct_matrix(n_filters, n_coef), persistent=False)

    def num_frames(self, num_samples: int) -> int:
        """Frames for a clip of `num_samples` samples (centred STFT)."""
        return 1 + num_samples // self.hop

    def filterbank_energies(self, wav: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """wav (B, T) -> (power spectrum (B, T', n_fft // 2 + 1), filterbank energies (B, T', n_filters))."""
        if wav.dim() != 2 or wav.shape[1] == 0:
            raise UsageError(f"LFCC front-end expects wav of shape (batch, samples), got {tuple(wav.shape)}")
        if self.preemphasis:
            wav = torch.cat([wav[:, :1], wav[:, 1:] - self.preemphasis * wav[:, :-1]], dim=1)
        spec = torch.stft(wav, self.n_fft, self.hop, self.win_length, window=self.window, center=True,
                          pad_mode="constant", onesided=True, return_complex=True)       # (B, K, T')
        power = spec.abs().pow(2).transpose(1, 2)
        return power, power @ self.fbank

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """wav: (B, T) float32 in [-1, 1] at 16 kHz -> (B, 1, 1 + T // 160, 60) for the defaults."""
        eps = torch.finfo(torch.float32).eps
        power, fb = self.filterbank_energies(wav)
        lfcc = torch.log10(fb + eps) @ self.dct                                         # (B, T', n_coef)
        if self.with_energy:  # the reference replaces c0 by the frame's log energy
            energy = torch.log10((power / self.n_fft).sum(-1, keepdim=True) + eps)
            lfcc = torch.cat([energy, lfcc[..., 1:]], dim=-1)
        d1 = delta(lfcc)
        return torch.cat([lfcc, d1, delta(d1)], dim=-1).unsqueeze(1)

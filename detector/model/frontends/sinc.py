"""Raw-waveform front-end of AASIST (Jung et al., ICASSP 2022), trained from scratch.

wav -> fixed sinc-conv filterbank (70 mel-spaced band-pass filters, 129 taps, valid convolution)
-> |x| -> max-pool (3, 3) over (filter, time) -> BatchNorm2d(1) + SELU -> six residual blocks, each
ending in max-pool (1, 3) over time -> map (B, C, F=23, T'), returned per frame as a flattened (C, F)
map: (B, 1, T', C * F), C-major, so `x.view(B, 1, T', C, F)` recovers it (`map_channels = C`).

Reference: clovaai/aasist `models/AASIST.py` (`CONV`, `Residual_block`), configs AASIST.conf /
AASIST-L.conf. As there, the sinc filters are not trained (a buffer, not a parameter); the residual
blocks are the back-end's (`aasist_full.ResidualBlock`, with the reference's max-pool (1, 3)), which
keep the reference's arithmetic: conv1 reads the raw block input, and the reference's unused bn1 is
kept frozen, so the parameter count is the reference's.
Frames: T' = (T - 128) // 2187 (hop 3^7 = 2187 samples, 7.3 frames/s): 7 for 16,000 samples, 29 for
64,600 (the reference's 29 temporal x 23 spectral nodes); inputs under 2,315 samples are refused.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

from manifests.errors import UsageError

from ..backends.aasist_full import ResidualBlock

# (in, out) channels of the six residual blocks; reference filts[1..4] with filts[4] repeated thrice
SIZES = {
    "aasist": [(1, 32), (32, 32), (32, 64), (64, 64), (64, 64), (64, 64)],
    "aasist-l": [(1, 32), (32, 32), (32, 24), (24, 24), (24, 24), (24, 24)],
}


def sinc_filters(n_filters: int = 70, kernel_size: int = 128, sample_rate: int = 16000) -> tuple[torch.Tensor, torch.Tensor]:
    """Mel-spaced band-pass sinc filters -> (filters (n_filters, K) float32, band edges (n_filters + 1,) Hz).

    K = kernel_size, made odd (+1) so each filter is symmetric. Edges are equally spaced on the mel
    scale (2595 log10(1 + f / 700)) from 0 Hz to sr / 2; filter i is the ideal low-pass at edge i + 1
    minus the one at edge i (each 2 f / sr sinc(2 f n / sr)), times a symmetric Hamming window.
    Precision as in the reference CONV (so published AASIST checkpoints score as there: float64 filters
    move their logits by up to 1.2e-4): the sinc argument and the sinc in float32, the low-pass scale in
    float64, the band-pass and window rounded to float32 before their product.
    """
    k = kernel_size + 1 - kernel_size % 2
    mel_max = 2595 * math.log10(1 + (sample_rate / 2) / 700)
    edges = 700 * (10 ** (torch.linspace(0, mel_max, n_filters + 1, dtype=torch.float64) / 2595) - 1)
    n = torch.arange(k, dtype=torch.float32) - (k - 1) / 2                     # taps, centred on 0
    arg = (2 * edges[:, None]).float() * n / sample_rate                       # (n_filters + 1, K) float32
    low_pass = 2 * edges[:, None] / sample_rate * torch.from_numpy(np.sinc(arg.numpy()))
    window = torch.hamming_window(k, periodic=False, dtype=torch.float64).float()
    return (low_pass[1:] - low_pass[:-1]).float() * window, edges


class SincFrontend(nn.Module):
    """wav (B, T) at 16 kHz -> AASIST encoder map (B, 1, T', C * F), F = n_filters // 3, C = 64 or 24."""

    trainable = True  # the encoder is trained from scratch (the sinc filterbank stays fixed)
    pretrained = False  # nothing is loaded: a checkpoint must store the encoder

    def __init__(self, size: str = "aasist", n_filters: int = 70, kernel_size: int = 128,
                 sample_rate: int = 16000, freq_mask: bool = False):
        super().__init__()
        if size not in SIZES:
            raise UsageError(f"unknown sinc front-end size {size!r}; allowed: {', '.join(SIZES)}")
        if n_filters < 3 or kernel_size < 2:
            raise UsageError(f"sinc front-end needs n_filters >= 3 and kernel_size >= 2, got {n_filters}, {kernel_size}")
        filters, edges = sinc_filters(n_filters, kernel_size, sample_rate)
        self.register_buffer("filters", filters.unsqueeze(1), persistent=False)  # (n_filters, 1, K), fixed
        self.register_buffer("edges_hz", edges.float(), persistent=False)
        self.first_bn = nn.BatchNorm2d(1)
        self.encoder = nn.Sequential(*(ResidualBlock(i, o, first=k == 0, pool=True)
                                       for k, (i, o) in enumerate(SIZES[size])))
        self.freq_mask = freq_mask  # reference `Freq_aug`: zero 0..19 adjacent filters per batch in training
        self.kernel, self.hop = filters.shape[1], 3 ** (1 + len(SIZES[size]))
        self.map_channels, self.map_freqs = SIZES[size][-1][1], n_filters // 3
        self.num_layers, self.dim = 1, self.map_channels * self.map_freqs

    def num_frames(self, num_samples: int) -> int:
        """Output frames T' for a clip of `num_samples` samples (0 when too short)."""
        return max(0, (num_samples - self.kernel + 1) // self.hop)

    def _masked_filters(self) -> torch.Tensor:
        w = self.filters
        if self.training and self.freq_mask:
            width = int(torch.randint(0, 20, ()))
            start = int(torch.randint(0, w.shape[0] - width + 1, ()))
            w = w.clone()
            w[start:start + width] = 0
        return w

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """wav: (B, T) float32 in [-1, 1] at 16 kHz -> (B, 1, (T - 128) // 2187, C * 23) for the defaults."""
        if wav.dim() != 2:
            raise UsageError(f"sinc front-end expects wav of shape (batch, samples), got {tuple(wav.shape)}")
        if self.num_frames(wav.shape[1]) < 1:
            need = self.kernel - 1 + self.hop
            raise UsageError(f"sinc front-end needs clips of at least {need} samples, got {wav.shape[1]}; crop longer")
        x = F.conv1d(wav.unsqueeze(1), self._masked_filters())                   # (B, n_filters, T - K + 1)
        x = F.max_pool2d(x.abs().unsqueeze(1), (3, 3))                             # (B, 1, F, T1 // 3)
        x = self.encoder(F.selu(self.first_bn(x)))                                 # (B, C, F, T')
        b, c, f, t = x.shape
        return x.permute(0, 3, 1, 2).reshape(b, 1, t, c * f)

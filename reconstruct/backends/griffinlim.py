"""Weight-free vocoder: copy-synthesis by Griffin-Lim from the (mel-)magnitude spectrogram."""
from __future__ import annotations

import dataclasses

import torch

from .base import Backend
from .registry import register


@dataclasses.dataclass(frozen=True)
class GriffinLimParams:
    n_fft: int = 1024      # STFT size at 16 kHz
    hop_length: int = 256  # frame hop, samples
    n_mels: int = 80       # mel bins the magnitude passes through; 0 = keep the linear spectrogram
    n_iter: int = 32       # Griffin-Lim iterations
    momentum: float = 0.99  # fast Griffin-Lim momentum

    def check(self) -> None:
        if self.n_fft < 16 or self.hop_length < 1 or self.hop_length > self.n_fft:
            raise ValueError(f"need 16 <= n_fft and 1 <= hop_length <= n_fft, got {self.n_fft}, {self.hop_length}")
        if self.n_iter < 1 or not 0 <= self.momentum < 1 or self.n_mels < 0:
            raise ValueError("need n_iter >= 1, 0 <= momentum < 1, n_mels >= 0")


@register
class GriffinLim(Backend):
    name = "griffinlim"
    method = "vocoder"
    sample_rate = 16000
    Params = GriffinLimParams
    description = "mel-spectrogram copy-synthesis with Griffin-Lim phase (torchaudio), no weights"

    def load(self, checkpoint) -> None:
        import torchaudio.transforms as T

        p = self.params
        self.window = torch.hann_window(p.n_fft, device=self.device)
        self.mel = self.inverse = None
        if p.n_mels:
            self.mel = T.MelScale(p.n_mels, self.sample_rate, n_stft=p.n_fft // 2 + 1).to(self.device)
            self.inverse = T.InverseMelScale(p.n_fft // 2 + 1, p.n_mels, self.sample_rate).to(self.device)

    def min_samples(self) -> int:
        return self.params.n_fft // 2 + 1

    def _reconstruct(self, wav: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        p = self.params
        spec = torch.stft(wav, p.n_fft, p.hop_length, window=self.window, return_complex=True).abs()
        if self.mel is not None:
            spec = self.inverse(self.mel(spec)).clamp_min(0)
        # Seeded random phase start so the result depends only on (clip, seed).
        phase = torch.rand(spec.shape, generator=generator).to(spec.device) * 2 * torch.pi
        spec_init = spec * torch.exp(1j * phase)
        angles = spec_init / spec_init.abs().clamp_min(1e-16)
        return _griffinlim(spec, angles, self.window, p, wav.shape[0])


def _griffinlim(mag: torch.Tensor, angles: torch.Tensor, window: torch.Tensor, p: GriffinLimParams,
                length: int) -> torch.Tensor:
    """Fast Griffin-Lim (Perraudin et al. 2013) from a given initial phase."""
    prev = torch.zeros_like(angles)
    for _ in range(p.n_iter):
        inverse = torch.istft(mag * angles, p.n_fft, p.hop_length, window=window, length=length)
        rebuilt = torch.stft(inverse, p.n_fft, p.hop_length, window=window, return_complex=True)
        angles = rebuilt - (p.momentum / (1 + p.momentum)) * prev
        angles = angles / angles.abs().clamp_min(1e-16)
        prev = rebuilt
    return torch.istft(mag * angles, p.n_fft, p.hop_length, window=window, length=length)

"""Standardised log-mel features and their vocoding, shared by `reconstruct fit` and mel-diffusion.

Features: 16 kHz, |STFT| (n_fft 1024, hop 256, Hann) -> 80-bin HTK mel magnitude -> natural log
floored at e^-10 -> standardised with the training set's scalar mean and std. Squashing to
[-1, 1] instead left too little variance for the diffusion noise (notes/mel-diffusion.md).
Vocoding is InverseMelScale + seeded fast Griffin-Lim, the same as the `griffinlim` back-end.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import torch


@dataclasses.dataclass(frozen=True)
class MelConfig:
    sample_rate: int = 16000  # Hz
    n_fft: int = 1024         # STFT size, samples
    hop_length: int = 256     # frame hop, samples
    n_mels: int = 80          # mel bins (HTK scale, no norm)
    log_floor: float = -10.0  # natural-log floor of the mel magnitude
    mean: float = 0.0         # dataset mean of the floored log-mel (set by fit)
    std: float = 1.0          # dataset std of the floored log-mel (set by fit)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "MelConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown mel feature key(s) {', '.join(unknown)} (allowed: {', '.join(sorted(names))})")
        return cls(**d)


class MelFeatures(torch.nn.Module):
    """wav (T,) or (B, T) float32 at cfg.sample_rate <-> standardised log-mel (..., n_mels, frames)."""

    def __init__(self, cfg: MelConfig) -> None:
        super().__init__()
        import torchaudio.transforms as T

        self.cfg = cfg
        n_stft = cfg.n_fft // 2 + 1
        self.register_buffer("window", torch.hann_window(cfg.n_fft), persistent=False)
        self.mel = T.MelScale(cfg.n_mels, cfg.sample_rate, n_stft=n_stft)
        self.inverse = T.InverseMelScale(n_stft, cfg.n_mels, cfg.sample_rate)

    def log_mel(self, wav: torch.Tensor) -> torch.Tensor:
        """Floored natural-log mel magnitude, not standardised: (..., n_mels, 1 + T // hop)."""
        c = self.cfg
        spec = torch.stft(wav, c.n_fft, c.hop_length, window=self.window, return_complex=True).abs()
        return self.mel(spec).clamp_min(torch.exp(torch.tensor(c.log_floor)).item()).log()

    def encode(self, wav: torch.Tensor) -> torch.Tensor:
        """Standardised log-mel (zero mean, unit variance over the training set)."""
        return (self.log_mel(wav) - self.cfg.mean) / self.cfg.std

    def decode_mel(self, z: torch.Tensor) -> torch.Tensor:
        """Standardised log-mel -> mel magnitude."""
        return (z * self.cfg.std + self.cfg.mean).exp()

    def vocode(self, z: torch.Tensor, length: int, n_iter: int, generator: torch.Generator,
               momentum: float = 0.99) -> torch.Tensor:
        """Standardised log-mel (n_mels, frames) -> waveform (length,) by InverseMelScale + Griffin-Lim.

        The initial phase is drawn from `generator`, so the output depends only on (mel, seed).
        """
        from .backends.griffinlim import GriffinLimParams, _griffinlim

        c = self.cfg
        mag = self.inverse(self.decode_mel(z)).clamp_min(0)
        phase = torch.rand(mag.shape, generator=generator).to(mag.device) * 2 * torch.pi
        angles = torch.exp(1j * phase)
        p = GriffinLimParams(n_fft=c.n_fft, hop_length=c.hop_length, n_mels=c.n_mels, n_iter=n_iter,
                             momentum=momentum)
        return _griffinlim(mag, angles, self.window, p, length)


def freq_channel(n_mels: int, frames: int, batch: int = 1, device: torch.device | str = "cpu") -> torch.Tensor:
    """The frequency-position input channel: each mel bin's index scaled to [-1, 1], (B, 1, n_mels, frames)."""
    pos = torch.linspace(-1.0, 1.0, n_mels, device=device)
    return pos.view(1, 1, n_mels, 1).expand(batch, 1, n_mels, frames)

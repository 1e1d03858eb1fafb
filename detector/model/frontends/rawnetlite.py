"""RawNetLite front-end: the convolutional part of RawNetLite (Di Pierno et al., IJCNN 2025 VERIMEDIA workshop;
adipiz99/RawNetLite `RawNetLite.py`), with the input preparation of its `audio_preprocessor.preprocess_audio`.

wav (B, T) -> peak-normalised over the WHOLE clip (x / max|x|, as the reference does before cutting) -> the
first `num_samples` (48,000 = 3 s at 16 kHz) samples, zero-padded at the end when shorter -> Conv1d(1, 64, 3)
+ BatchNorm + ReLU -> three residual blocks (two Conv1d(64, 64, 3) + BatchNorm, ReLU after the sum) ->
adaptive average pooling to 64 frames -> (B, 1, 64, 64): one "layer" of 64 frames x 64 channels.
Because the preparation happens here, the detector takes whole utterances; zero padding of a batch does not
change a clip's peak or its first 48,000 samples, so padded batches score like single clips.
"""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from manifests.errors import UsageError


class ResBlock1d(nn.Module):
    """(B, C, T) -> (B, C, T): relu(bn2(conv2(relu(bn1(conv1(x))))) + x)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv1d(channels, channels, 3, padding=1)
        self.bn1 = nn.BatchNorm1d(channels)
        self.conv2 = nn.Conv1d(channels, channels, 3, padding=1)
        self.bn2 = nn.BatchNorm1d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(h)) + x)


def prepare(wav: torch.Tensor, num_samples: int | None) -> torch.Tensor:
    """(B, T) -> (B, num_samples): divide by the clip's peak (silence stays 0), then cut or zero-pad at the end."""
    peak = wav.abs().amax(dim=-1, keepdim=True)
    wav = wav / peak.clamp_min(torch.finfo(wav.dtype).tiny)
    if num_samples is None:
        return wav
    if wav.shape[-1] >= num_samples:
        return wav[:, :num_samples]
    return F.pad(wav, (0, num_samples - wav.shape[-1]))


class RawNetLiteFrontend(nn.Module):
    """wav (B, T) float32 at 16 kHz, any scale -> (B, 1, frames=64, channels=64); trained (from scratch or
    from the published weights)."""

    map_channels = None
    trainable, pretrained = True, False

    def __init__(self, channels: int = 64, frames: int = 64, num_samples: int | None = 48000):
        super().__init__()
        self.num_samples, self.num_layers, self.dim = num_samples, 1, channels
        self.conv_pre = nn.Conv1d(1, channels, 3, padding=1)
        self.bn_pre = nn.BatchNorm1d(channels)
        self.blocks = nn.Sequential(*(ResBlock1d(channels) for _ in range(3)))
        self.pool = nn.AdaptiveAvgPool1d(frames)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        if wav.dim() != 2 or wav.shape[1] == 0:
            raise UsageError(f"RawNetLite front-end expects wav of shape (batch, samples), got {tuple(wav.shape)}")
        x = prepare(wav, self.num_samples).unsqueeze(1)     # (B, 1, N)
        x = F.relu(self.bn_pre(self.conv_pre(x)))           # (B, C, N)
        x = self.pool(self.blocks(x))                       # (B, C, frames)
        return x.transpose(1, 2).unsqueeze(1)               # (B, 1, frames, C)

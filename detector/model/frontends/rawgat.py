"""Raw-waveform front-end of RawGAT-ST (Tak et al., ASVspoof 2021 workshop): the sinc layer of AASIST and
two residual encoders, one for the spectral graph and one for the temporal graph.

wav -> fixed sinc-conv filterbank (70 filters, 129 taps; frontends/sinc.py) -> |x| -> max-pool (3, 3) ->
BatchNorm2d(1) + SELU -> encoder1 and encoder2, six blocks each ([32,32], [32,32], [32,64], [64,64] x3, each
ending in max-pool (1, 3) over time) -> two maps (B, 64, 23, T'), returned per frame as one flattened map of
128 channels, encoder1's first: (B, 1, T', 128 * 23), `map_channels = 128`. T' = (T - 128) // 2187.

Reference: eurecom-asp/RawGAT-ST-antispoofing `model.py` (`RawGAT_ST`, `Residual_block`), the
`RawGAT_ST_mul` checkpoint, model_config_RawGAT_ST.yaml. Its blocks differ from AASIST's: the first block's
conv (`conv_1`) reads the 1-channel input and its skip adds that channel to all 32 (broadcast, no
projection); every later block also holds a `conv_1` it never uses and, as in AASIST, a `bn1` whose output
conv1 ignores. Those unused layers are kept (frozen, not computed) so the reference's state dicts map key
for key.
"""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from manifests.errors import UsageError

from .sinc import sinc_filters

FILTERS = [(32, 32), (32, 32), (32, 64), (64, 64), (64, 64), (64, 64)]  # the yaml's filts[1], [1], [2], [3] x3


class RawGATBlock(nn.Module):
    """(B, cin, F, T) -> (B, cout, F, T // 3); the first block reads a 1-channel map (cin is nominal)."""

    def __init__(self, cin: int, cout: int, first: bool = False):
        super().__init__()
        self.first = first
        self.conv_1 = nn.Conv2d(1, cout, (2, 3), padding=(1, 1))
        if not first:
            self.bn1 = nn.BatchNorm2d(cin).requires_grad_(False)   # unused by the reference's forward
            self.conv1 = nn.Conv2d(cin, cout, (2, 3), padding=(1, 1))
            self.conv_1.requires_grad_(False)                       # unused outside the first block
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, (2, 3), padding=(0, 1))
        self.conv_downsample = nn.Conv2d(cin, cout, (1, 3), padding=(0, 1)) if cin != cout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(F.selu(self.bn2((self.conv_1 if self.first else self.conv1)(x))))
        out = out + (x if self.conv_downsample is None else self.conv_downsample(x))  # first: 1 channel broadcast
        return F.max_pool2d(out, (1, 3))


def _encoder() -> nn.Sequential:
    return nn.Sequential(*(RawGATBlock(i, o, first=k == 0) for k, (i, o) in enumerate(FILTERS)))


class RawGATFrontend(nn.Module):
    """wav (B, T) at 16 kHz -> (B, 1, T', 128 * 23): encoder1's map then encoder2's, channel-major per frame."""

    trainable = True  # trained from scratch or loaded with the rest of the detector (the sinc filters stay fixed)
    pretrained = False

    def __init__(self, n_filters: int = 70, kernel_size: int = 128, sample_rate: int = 16000):
        super().__init__()
        filters, _ = sinc_filters(n_filters, kernel_size, sample_rate)
        self.register_buffer("filters", filters.unsqueeze(1), persistent=False)  # (n_filters, 1, K), fixed
        self.first_bn = nn.BatchNorm2d(1)
        self.encoder1, self.encoder2 = _encoder(), _encoder()
        self.kernel, self.hop = filters.shape[1], 3 ** (1 + len(FILTERS))
        self.map_channels, self.map_freqs = 2 * FILTERS[-1][1], n_filters // 3
        self.num_layers, self.dim = 1, self.map_channels * self.map_freqs

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """wav: (B, T) float32 in [-1, 1] at 16 kHz -> (B, 1, (T - 128) // 2187, 128 * 23)."""
        if wav.dim() != 2:
            raise UsageError(f"rawgat-st front-end expects wav of shape (batch, samples), got {tuple(wav.shape)}")
        if (wav.shape[1] - self.kernel + 1) // self.hop < 1:
            raise UsageError(f"rawgat-st front-end needs clips of at least {self.kernel - 1 + self.hop} samples, "
                             f"got {wav.shape[1]}; crop longer")
        x = F.max_pool2d(F.conv1d(wav.unsqueeze(1), self.filters).abs().unsqueeze(1), (3, 3))  # (B, 1, F, T1)
        x = F.selu(self.first_bn(x))
        e = torch.cat([self.encoder1(x), self.encoder2(x)], dim=1)                            # (B, 128, F, T')
        b, c, f, t = e.shape
        return e.permute(0, 3, 1, 2).reshape(b, 1, t, c * f)

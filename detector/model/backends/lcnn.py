"""LCNN-LSTM back-end: the LFCC-LCNN-LSTM countermeasure of the ASVspoof 2021 baseline (Xin Wang's
project-NN-Pytorch-scripts, `project/04-asvspoof2021-toy/lfcc-lcnn-lstm-sig_toy_example/model.py`).

A light CNN over the (time, feature) map, max-feature-map (MFM) activations and four 2x2 max-pools, then two
bidirectional LSTM layers whose output is added to their input (a skip), averaged over time -> embedding.
The bona fide logit is the head Linear(embedding) (the reference trains sigmoid(logit) against bona fide = 1).
The layers keep the reference's order, so `convs.<i>` is the reference's `m_transform.0.<i>`; the reference
applies no input normalisation (its input_mean/std are 0/1 and unused in forward).
"""
from __future__ import annotations

import torch
from torch import nn

from manifests.errors import UsageError

# (out_channels of the conv before MFM, kernel) per conv; "pool" = 2x2 max-pool; "bn" = BatchNorm2d without affine
_LAYOUT = (
    (64, 5), "pool",
    (64, 1), "bn", (96, 3), "pool", "bn",
    (96, 1), "bn", (128, 3), "pool",
    (128, 1), "bn", (64, 3), "bn",
    (64, 1), "bn", (64, 3), "pool",
)
POOLS = 4  # time and feature axes both shrink by 2**POOLS (floor at each pool)


class MaxFeatureMap(nn.Module):
    """(B, 2C, ...) -> (B, C, ...): the element-wise max of the first and second half of the channels."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first, second = x.chunk(2, dim=1)
        return torch.maximum(first, second)


def lcnn_layers(dropout: float) -> nn.Sequential:
    """The reference's conv stack as one Sequential (conv, MFM, pool, BN in its order) ending in dropout."""
    layers: list[nn.Module] = []
    channels = 1
    for item in _LAYOUT:
        if item == "pool":
            layers.append(nn.MaxPool2d(2, 2))
        elif item == "bn":
            layers.append(nn.BatchNorm2d(channels, affine=False))
        else:
            out, kernel = item
            layers += [nn.Conv2d(channels, out, kernel, 1, padding=kernel // 2), MaxFeatureMap()]
            channels = out // 2
    layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


class LCNNLSTM(nn.Module):
    """(B, T, D) frames (D = 60 LFCC dims in the reference) -> (B, E) embedding, E = 32 * (D // 16)."""

    def __init__(self, dim: int, dropout: float = 0.7, **_):
        super().__init__()
        if dim < 2 ** POOLS:
            raise UsageError(f"lcnn-lstm back-end needs at least {2 ** POOLS} feature dims, got {dim}")
        self.convs = lcnn_layers(dropout)
        self.embed_dim = 32 * (dim // 2 ** POOLS)
        # two stacked bidirectional layers: the same arithmetic as the reference's two BLSTMLayer blocks
        self.blstm = nn.LSTM(self.embed_dim, self.embed_dim // 2, num_layers=2, bidirectional=True, batch_first=True)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, T, D) -> (B, E): CNN map (B, 32, T // 16, D // 16) as frames (B, T // 16, E), BLSTM + skip, time mean."""
        if x.shape[1] < 2 ** POOLS:
            raise UsageError(f"lcnn-lstm back-end needs at least {2 ** POOLS} frames, got {x.shape[1]} "
                             f"(LFCC: 0.15 s at 16 kHz)")
        h = self.convs(x.unsqueeze(1))                       # (B, 32, T', D')
        h = h.permute(0, 2, 1, 3).flatten(2)                 # (B, T', 32 * D'), channel-major like the reference
        out, _ = self.blstm(h)
        return (out + h).mean(1)

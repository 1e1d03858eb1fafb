"""RawNetLite back-end: the recurrent part of RawNetLite (adipiz99/RawNetLite `RawNetLite.py`).

(B, T, D) frames (64 x 64 from frontends/rawnetlite.py) -> one bidirectional GRU layer (hidden 128 per
direction) -> its output at the LAST frame (B, 256; the backward half has then seen one frame only, as in the
reference) -> Linear(256, embed_dim=64) = the embedding. The reference's last layer, fc2 then sigmoid = p(fake),
becomes the detector's head with the sign flipped (see model/pretrained/rawnetlite.py).
"""
from __future__ import annotations

import torch
from torch import nn


class RawNetLiteGRU(nn.Module):
    def __init__(self, dim: int, embed_dim: int = 64, hidden: int = 128, **_):
        super().__init__()
        self.gru = nn.GRU(dim, hidden, num_layers=1, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(2 * hidden, embed_dim)
        self.embed_dim = embed_dim

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, T, D) -> (B, E)."""
        out, _ = self.gru(x)                                 # (B, T, 2 * hidden)
        return self.fc(out[:, -1])

"""The graph part of RawGAT-ST (Tak et al., ASVspoof 2021 workshop), its "mul" variant (the published
RawGAT_ST_mul checkpoint), after the two encoders of frontends/rawgat.py.

Re-implements the arithmetic of eurecom-asp/RawGAT-ST-antispoofing `model.py` `RawGAT_ST.forward`:
spectral nodes max_t |e1| (B, 23, 64) -> GAT (64 -> 32) -> graph pool 0.64 (14 nodes) -> proj1 Linear(14, 12)
over the node axis; temporal nodes max_f |e2| (B, 29, 64) -> GAT (64 -> 32) -> graph pool 0.81 (23 nodes) ->
proj2 Linear(23, 12); their element-wise product (B, 12, 32) -> GAT (32 -> 16) -> graph pool 0.64 (7 nodes)
-> proj Linear(16, 1) -> (B, 7), the embedding. The reference's proj_node Linear(7, 2) is the detector's head.
The GAT layers have no temperature (1); dropout as in the reference (0.2 on GAT inputs, 0.3 before pooling).
The node-axis projections fix the node counts, so the model reads exactly 29 frames (64,600 samples, the
reference's crop; 63,551 to 65,737 samples give 29).
"""
from __future__ import annotations

import torch
from torch import nn

from manifests.errors import UsageError

from .aasist import map_bins, unflatten_map
from .aasist_full import GraphAttentionLayer, GraphPool

FRAMES, BINS, CHANNELS = 29, 23, 64  # temporal and spectral nodes, and channels per encoder, of the reference


class RawGATST(nn.Module):
    """(B, 29, 128 * 23) maps (encoder1's 64 channels, then encoder2's) -> embedding (B, 7)."""

    def __init__(self, dim: int, map_channels: int | None):
        super().__init__()
        if map_channels != 2 * CHANNELS or map_bins(dim, map_channels) != BINS:
            raise UsageError(f"the rawgat-st back-end reads the rawgat-st front-end's maps; use --frontend rawgat-st "
                             f"(got map_channels={map_channels}, feature size {dim})")
        c = CHANNELS
        self.map_channels = map_channels
        self.GAT_layer1, self.pool1 = GraphAttentionLayer(c, 32, 1.0), GraphPool(0.64, 32, 0.3)
        self.GAT_layer2, self.pool2 = GraphAttentionLayer(c, 32, 1.0), GraphPool(0.81, 32, 0.3)
        self.GAT_layer3, self.pool3 = GraphAttentionLayer(32, 16, 1.0), GraphPool(0.64, 16, 0.3)
        self.proj1, self.proj2 = nn.Linear(int(BINS * 0.64), 12), nn.Linear(int(FRAMES * 0.81), 12)
        self.proj = nn.Linear(16, 1)
        self.embed_dim = int(12 * 0.64)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 29, 128 * 23) -> (B, 7)."""
        if x.shape[1] != FRAMES:
            raise UsageError(f"rawgat-st reads exactly {FRAMES} frames (64,600 samples, its training crop); "
                             f"got {x.shape[1]} frames: crop or repeat-pad clips to 64,600 samples")
        e = unflatten_map(x, self.map_channels).abs()                    # (B, 128, 23, 29)
        c = CHANNELS
        s = self.pool1(self.GAT_layer1(e[:, :c].amax(dim=3).transpose(1, 2)))   # (B, 14, 32)
        t = self.pool2(self.GAT_layer2(e[:, c:].amax(dim=2).transpose(1, 2)))   # (B, 23, 32)
        fused = self.proj1(s.transpose(1, 2)) * self.proj2(t.transpose(1, 2))   # (B, 32, 12)
        g = self.pool3(self.GAT_layer3(fused.transpose(1, 2)))                  # (B, 7, 16)
        return self.proj(g).squeeze(-1)                                         # (B, 7)

"""The graph part of the original raw-waveform AASIST (Jung et al., ICASSP 2022), sized as AASIST or AASIST-L.

Re-implements the arithmetic of clovaai/aasist `models/AASIST.py` `Model` after its encoder (the sinc
layer and residual encoder are the `sinc` front-end, frontends/sinc.py):

map (B, C, F, T') -> spectral nodes max_t |e| + pos_S (B, F, C) and temporal nodes max_f |e| (B, T', C)
-> GAT (C -> gat_dims[0], temperatures[0] / [1]) + graph pool (pool_ratios[0] / [1]) on each -> two
branches of two heterogeneous layers (gat_dims[0] -> gat_dims[1] -> gat_dims[1], temperature
temperatures[2]) with graph pool pool_ratios[2] in between and a master node -> drop_way 0.2 ->
element-wise max of the branches -> readout [T_max, T_avg, S_max, S_avg, master] (B, 5 * gat_dims[1])
-> dropout 0.5. The reference's out_layer Linear(5 * gat_dims[1], 2) is the detector's head.

It differs from the SSL-AASIST graph part (aasist_full.AASISTFull) in its nodes (max of |e|, no
attention map, no first_bn1) and in its per-size widths, pool ratios and temperatures; it shares its
layers. Attribute names are the reference's, so its state dicts map key for key.
"""
from __future__ import annotations

import torch
from torch import nn

from manifests.errors import UsageError

from .aasist import map_bins, unflatten_map
from .aasist_full import GraphAttentionLayer, GraphPool, HtrgGraphAttentionLayer

# per size, the reference config's model_config (config/AASIST.conf, config/AASIST-L.conf); the reference
# reads pool_ratios[0..2] and temperatures[0..2] only (its 4th entries are unused)
SIZES = {
    "original": {"gat_dims": (64, 32), "pool_ratios": (0.5, 0.7, 0.5), "temperatures": (2.0, 2.0, 100.0)},
    "original-l": {"gat_dims": (24, 32), "pool_ratios": (0.4, 0.5, 0.7), "temperatures": (2.0, 2.0, 100.0)},
}


class AASISTOriginal(nn.Module):
    """Encoded map (B, T', C * F), C-major per frame (`map_channels=C`) -> embedding (B, 5 * gat_dims[1])."""

    def __init__(self, dim: int, map_channels: int | None, size: str = "original"):
        super().__init__()
        if size not in SIZES:
            raise UsageError(f"unknown original AASIST size {size!r}; allowed: {', '.join(SIZES)}")
        if map_channels is None:
            raise UsageError(f"AASIST size {size!r} reads an encoded sinc map; use it with --frontend sinc or sinc-l")
        (g0, g1), ratios, temps = SIZES[size]["gat_dims"], SIZES[size]["pool_ratios"], SIZES[size]["temperatures"]
        c, n_freq = map_channels, map_bins(dim, map_channels)
        self.map_channels = map_channels
        self.pos_S = nn.Parameter(torch.randn(1, n_freq, c))
        self.master1, self.master2 = nn.Parameter(torch.randn(1, 1, g0)), nn.Parameter(torch.randn(1, 1, g0))
        self.GAT_layer_S, self.GAT_layer_T = GraphAttentionLayer(c, g0, temps[0]), GraphAttentionLayer(c, g0, temps[1])
        self.HtrgGAT_layer_ST11 = HtrgGraphAttentionLayer(g0, g1, temps[2])
        self.HtrgGAT_layer_ST12 = HtrgGraphAttentionLayer(g1, g1, temps[2])
        self.HtrgGAT_layer_ST21 = HtrgGraphAttentionLayer(g0, g1, temps[2])
        self.HtrgGAT_layer_ST22 = HtrgGraphAttentionLayer(g1, g1, temps[2])
        self.pool_S, self.pool_T = GraphPool(ratios[0], g0, 0.3), GraphPool(ratios[1], g0, 0.3)
        self.pool_hS1, self.pool_hT1 = GraphPool(ratios[2], g1, 0.3), GraphPool(ratios[2], g1, 0.3)
        self.pool_hS2, self.pool_hT2 = GraphPool(ratios[2], g1, 0.3), GraphPool(ratios[2], g1, 0.3)
        self.drop, self.drop_way = nn.Dropout(0.5), nn.Dropout(0.2)
        self.embed_dim = 5 * g1

    def _branch(self, k: int, t: torch.Tensor, s: torch.Tensor) -> list[torch.Tensor]:
        """Inference branch k (1 or 2): temporal (B, Nt, g0), spectral (B, Ns, g0) -> t, s, master at g1."""
        l1, l2 = getattr(self, f"HtrgGAT_layer_ST{k}1"), getattr(self, f"HtrgGAT_layer_ST{k}2")
        t1, s1, m1 = l1(t, s, getattr(self, f"master{k}"))
        s1, t1 = getattr(self, f"pool_hS{k}")(s1), getattr(self, f"pool_hT{k}")(t1)
        t2, s2, m2 = l2(t1, s1, m1)
        return [self.drop_way(v) for v in (t1 + t2, s1 + s2, m1 + m2)]

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, T', C * F) encoded maps (the sinc front-end's frames) -> (B, 5 * gat_dims[1])."""
        e = unflatten_map(x, self.map_channels).abs()                            # (B, C, F, T')
        e_s = e.amax(dim=3).transpose(1, 2) + self.pos_S                          # spectral nodes (B, F, C)
        e_t = e.amax(dim=2).transpose(1, 2)                                       # temporal nodes (B, T', C)
        s, t = self.pool_S(self.GAT_layer_S(e_s)), self.pool_T(self.GAT_layer_T(e_t))
        (t1, s1, m1), (t2, s2, m2) = self._branch(1, t, s), self._branch(2, t, s)
        t, s, m = torch.maximum(t1, t2), torch.maximum(s1, s2), torch.maximum(m1, m2)
        out = torch.cat([t.abs().amax(1), t.mean(1), s.abs().amax(1), s.mean(1), m.squeeze(1)], dim=-1)
        return self.drop(out)

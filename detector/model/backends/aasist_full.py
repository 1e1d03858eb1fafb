"""The SSL-AASIST back-end at the paper's size (Tak et al., Odyssey 2022, "Automatic speaker verification
spoofing and deepfake detection using wav2vec 2.0 and data augmentation").

Re-implements the arithmetic of the reference `Model` (TakHemlata/SSL_Anti-spoofing `model.py`) without
its wav2vec 2.0 front-end and its Linear(160, 2) output layer:

features (B, T, D) -> LL Linear(D, 128) -> (B, 1, 128, T) -> max-pool 3x3 (floor) -> BN + SELU
-> 6 residual blocks [1,32],[32,32],[32,64],[64,64]x3 (no pooling: it is commented out in the reference)
-> BN + SELU -> (B, 64, 42, T // 3) -> attention Conv1x1(64,128) + SELU + BN + Conv1x1(128,64) = w
-> spectral nodes sum over time of x * softmax_time(w) (+ pos_S), temporal nodes sum over frequency of
x * softmax_freq(w) -> GAT (64, temperature 2) + graph pool 0.5 on each -> two branches of two
heterogeneous layers (64 -> 32 -> 32, temperature 100) with a master node -> drop_way 0.2 -> element-wise
max of the branches -> readout [T_max, T_avg, S_max, S_avg, master] (B, 160) -> dropout 0.5.

Attribute names follow the reference so its checkpoints load through `from_reference_state_dict`.
"""
from __future__ import annotations

import re

import torch
from torch import nn
import torch.nn.functional as F

from manifests.errors import UsageError

from .aasist import _node_bn, channel_linear, map_bins, unflatten_map

FILTERS = ((1, 32), (32, 32), (32, 64), (64, 64), (64, 64), (64, 64))  # residual encoder [in, out]
GAT_DIMS = (64, 32)


def _att_weight(dim: int) -> nn.Parameter:
    """A (dim, 1) attention vector, Xavier-normal as in the reference."""
    return nn.Parameter(nn.init.xavier_normal_(torch.empty(dim, 1)))


def _pair(x: torch.Tensor) -> torch.Tensor:
    """(B, N, C) -> (B, N, N, C) pairwise products x_i * x_j."""
    return x.unsqueeze(2) * x.unsqueeze(1)


class GraphAttentionLayer(nn.Module):
    """Homogeneous GAT with input dropout 0.2: x (B, N, din) -> (B, N, dout)."""

    def __init__(self, din: int, dout: int, temp: float):
        super().__init__()
        self.att_proj, self.att_weight = nn.Linear(din, dout), _att_weight(dout)
        self.proj_with_att, self.proj_without_att = nn.Linear(din, dout), nn.Linear(din, dout)
        self.bn, self.input_drop, self.temp = nn.BatchNorm1d(dout), nn.Dropout(0.2), temp

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.input_drop(x)
        att = (torch.tanh(self.att_proj(_pair(x))) @ self.att_weight).squeeze(-1)  # (B, N, N)
        att = (att / self.temp).softmax(dim=-1)
        x = self.proj_with_att(att @ x) + self.proj_without_att(x)
        return F.selu(_node_bn(self.bn, x))


class HtrgGraphAttentionLayer(nn.Module):
    """Heterogeneous GAT over type-1 and type-2 nodes plus a master node, input dropout 0.2."""

    def __init__(self, din: int, dout: int, temp: float):
        super().__init__()
        self.proj_type1, self.proj_type2 = nn.Linear(din, din), nn.Linear(din, din)
        self.att_proj, self.att_projM = nn.Linear(din, dout), nn.Linear(din, dout)
        self.att_weight11, self.att_weight22 = _att_weight(dout), _att_weight(dout)
        self.att_weight12, self.att_weightM = _att_weight(dout), _att_weight(dout)
        self.proj_with_att, self.proj_without_att = nn.Linear(din, dout), nn.Linear(din, dout)
        self.proj_with_attM, self.proj_without_attM = nn.Linear(din, dout), nn.Linear(din, dout)
        self.bn, self.input_drop, self.temp = nn.BatchNorm1d(dout), nn.Dropout(0.2), temp

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, master: torch.Tensor):
        """x1: (B, N1, din), x2: (B, N2, din), master: (B or 1, 1, din) -> same with dout (master (B, 1, dout))."""
        n1 = x1.shape[1]
        x = self.input_drop(torch.cat([self.proj_type1(x1), self.proj_type2(x2)], dim=1))  # (B, N, din)
        scores = torch.tanh(self.att_proj(_pair(x))) @ torch.cat(
            [self.att_weight11, self.att_weight22, self.att_weight12], dim=1)              # (B, N, N, 3)
        att = scores[..., 2].clone()                                                       # 12 and 21 blocks
        att[:, :n1, :n1], att[:, n1:, n1:] = scores[:, :n1, :n1, 0], scores[:, n1:, n1:, 1]
        att = (att / self.temp).softmax(dim=-1)
        m_att = (torch.tanh(self.att_projM(x * master)) @ self.att_weightM) / self.temp   # (B, N, 1)
        master = self.proj_with_attM(m_att.softmax(dim=1).transpose(1, 2) @ x) + self.proj_without_attM(master)
        x = F.selu(_node_bn(self.bn, self.proj_with_att(att @ x) + self.proj_without_att(x)))
        return x[:, :n1], x[:, n1:], master


class GraphPool(nn.Module):
    """Keep the top `ratio` of nodes (at least one) by a sigmoid score computed on dropped-out inputs."""

    def __init__(self, ratio: float, dim: int, drop: float):
        super().__init__()
        self.ratio, self.proj, self.drop = ratio, nn.Linear(dim, 1), nn.Dropout(drop)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """h: (B, N, C) -> (B, max(1, int(N * ratio)), C), scaled by the scores."""
        scores = torch.sigmoid(self.proj(self.drop(h)))                                   # (B, N, 1)
        k = max(int(h.shape[1] * self.ratio), 1)
        idx = scores.topk(k, dim=1).indices.expand(-1, -1, h.shape[-1])
        return torch.gather(h * scores, 1, idx)


class ResidualBlock(nn.Module):
    """(B, cin, F, T) -> (B, cout, F, T): conv(2x3) + BN + SELU + conv(2x3), plus a (1x3) conv skip; then,
    with `pool`, max-pool (1, 3) over time, as in the original AASIST's blocks (SSL-AASIST's have none).

    As in both references, `bn1` exists (except in the first block) but conv1 reads the block input, not
    selu(bn1(x)); bn1 therefore never gets a gradient and is frozen (keeps DDP without unused-parameter
    search working) and not computed.
    """

    def __init__(self, cin: int, cout: int, first: bool = False, pool: bool = False):
        super().__init__()
        if not first:
            self.bn1 = nn.BatchNorm2d(cin).requires_grad_(False)
        self.conv1 = nn.Conv2d(cin, cout, (2, 3), padding=(1, 1))
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, (2, 3), padding=(0, 1))
        self.conv_downsample = nn.Conv2d(cin, cout, (1, 3), padding=(0, 1)) if cin != cout else None
        self.pool = pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(F.selu(self.bn2(self.conv1(x))))
        out = out + (x if self.conv_downsample is None else self.conv_downsample(x))
        return F.max_pool2d(out, (1, 3)) if self.pool else out


class AASISTFull(nn.Module):
    """SSL-AASIST back-end: (B, T, D) features (T >= 3) -> embedding (B, 160).

    proj_dim: LL width (128 in the paper), giving proj_dim // 3 spectral nodes. With map_channels=C the
    input is an encoded map (B, T, C * F) and LL, first_bn and the encoder are not built; a Linear on
    channels (map_proj) maps C to 64 when C != 64.
    """

    def __init__(self, dim: int, proj_dim: int = 128, map_channels: int | None = None):
        super().__init__()
        c, (g0, g1) = FILTERS[-1][1], GAT_DIMS
        self.map_channels = map_channels
        if map_channels is None:
            if proj_dim < 3:
                raise UsageError(f"proj_dim={proj_dim} is too small for the full AASIST; use at least 3 (paper: 128)")
            self.LL = nn.Linear(dim, proj_dim)
            self.first_bn = nn.BatchNorm2d(1)
            self.encoder = nn.Sequential(*(ResidualBlock(a, b, first=i == 0) for i, (a, b) in enumerate(FILTERS)))
            n_freq = proj_dim // 3
        else:
            n_freq = map_bins(dim, map_channels)
            self.map_proj = nn.Linear(map_channels, c) if map_channels != c else None
        self.first_bn1 = nn.BatchNorm2d(c)
        self.attention = nn.Sequential(nn.Conv2d(c, 128, 1), nn.SELU(), nn.BatchNorm2d(128), nn.Conv2d(128, c, 1))
        self.pos_S = nn.Parameter(torch.randn(1, n_freq, c))
        self.master1, self.master2 = nn.Parameter(torch.randn(1, 1, g0)), nn.Parameter(torch.randn(1, 1, g0))
        self.GAT_layer_S, self.GAT_layer_T = GraphAttentionLayer(c, g0, 2.0), GraphAttentionLayer(c, g0, 2.0)
        self.HtrgGAT_layer_ST11 = HtrgGraphAttentionLayer(g0, g1, 100.0)
        self.HtrgGAT_layer_ST12 = HtrgGraphAttentionLayer(g1, g1, 100.0)
        self.HtrgGAT_layer_ST21 = HtrgGraphAttentionLayer(g0, g1, 100.0)
        self.HtrgGAT_layer_ST22 = HtrgGraphAttentionLayer(g1, g1, 100.0)
        self.pool_S, self.pool_T = GraphPool(0.5, g0, 0.3), GraphPool(0.5, g0, 0.3)
        self.pool_hS1, self.pool_hT1 = GraphPool(0.5, g1, 0.3), GraphPool(0.5, g1, 0.3)
        self.pool_hS2, self.pool_hT2 = GraphPool(0.5, g1, 0.3), GraphPool(0.5, g1, 0.3)
        self.drop, self.drop_way = nn.Dropout(0.5), nn.Dropout(0.2)
        self.embed_dim = 5 * g1

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, T, D) -> map (B, 64, F, T'): F = proj_dim // 3, T' = T // 3 (or the given map)."""
        if self.map_channels is not None:
            return channel_linear(self.map_proj, unflatten_map(x, self.map_channels))
        if x.shape[1] < 3:
            raise UsageError(f"the full AASIST needs at least 3 frames (60 ms of SSL features); got {x.shape[1]}")
        x = F.max_pool2d(self.LL(x).transpose(1, 2).unsqueeze(1), (3, 3))
        return self.encoder(F.selu(self.first_bn(x)))

    def _branch(self, k: int, t: torch.Tensor, s: torch.Tensor):
        """One inference branch (k = 1 or 2): two heterogeneous layers, graph pooling in between."""
        l1, l2 = getattr(self, f"HtrgGAT_layer_ST{k}1"), getattr(self, f"HtrgGAT_layer_ST{k}2")
        t1, s1, m1 = l1(t, s, getattr(self, f"master{k}"))
        t1, s1 = getattr(self, f"pool_hT{k}")(t1), getattr(self, f"pool_hS{k}")(s1)
        t2, s2, m2 = l2(t1, s1, m1)
        return [self.drop_way(v) for v in (t1 + t2, s1 + s2, m1 + m2)]

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, T, D) SSL features at 50 frames/s, or (B, T, C * F) maps -> (B, 160)."""
        x = F.selu(self.first_bn1(self.encode(x)))                               # (B, 64, F, T')
        w = self.attention(x)
        e_s = (x * w.softmax(dim=-1)).sum(-1).transpose(1, 2) + self.pos_S      # spectral nodes (B, F, 64)
        e_t = (x * w.softmax(dim=-2)).sum(-2).transpose(1, 2)                   # temporal nodes (B, T', 64)
        s, t = self.pool_S(self.GAT_layer_S(e_s)), self.pool_T(self.GAT_layer_T(e_t))
        (t1, s1, m1), (t2, s2, m2) = self._branch(1, t, s), self._branch(2, t, s)
        t, s, m = torch.maximum(t1, t2), torch.maximum(s1, s2), torch.maximum(m1, m2)
        out = torch.cat([t.abs().amax(1), t.mean(1), s.abs().amax(1), s.mean(1), m.squeeze(1)], dim=-1)
        return self.drop(out)


def from_reference_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A reference SSL-AASIST state dict (e.g. its LA/DF checkpoint) -> AASISTFull keys.

    Drops the wav2vec 2.0 (`ssl_model.*`) and output layer (`out_layer.*`), a DataParallel `module.`
    prefix, and the reference's extra nesting of the encoder blocks (`encoder.N.0.` -> `encoder.N.`).
    """
    out = {}
    for key, value in state.items():
        key = key.removeprefix("module.")
        if not key.startswith(("ssl_model.", "out_layer.")):
            out[re.sub(r"^encoder\.(\d+)\.0\.", r"encoder.\1.", key)] = value
    return out

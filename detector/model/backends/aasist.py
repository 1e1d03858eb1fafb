"""A compact AASIST (Jung et al., ICASSP 2022) fed by SSL features, as in XLS-R + AASIST (Tak et al. 2022).

features (B, T, D) -> linear projection to a (proj_dim x T) "spectrogram" -> residual 2-D conv
encoder -> spectral nodes (max over time) and temporal nodes (max over frequency) -> a graph
attention layer + graph pooling on each -> two branches of two stacked heterogeneous
spectro-temporal graph attention layers with a master node -> element-wise max of the branches
("max graph operation") -> readout [max|T|, mean T, max|S|, mean S, master] = embedding (B, 5 * gat_dim).

`backends.AASIST(...)` (in this package's __init__) is the single entry point: size "small" is this compact
model, "full" the paper's SSL-AASIST back-end (`aasist_full.AASISTFull`), "original"/"original-l" the raw-waveform
AASIST's graph part (`aasist_original`). With `map_channels=C` the input is an already encoded
spectro-temporal map (a raw-waveform front-end ran the sinc layer + residual encoder), so the
projection, first pooling and residual encoder are not built and the map goes straight to the graph part.
"""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from manifests.errors import UsageError



def count_parameters(module: nn.Module) -> int:
    """Number of parameter elements in `module`, trainable or frozen."""
    return sum(p.numel() for p in module.parameters())


def map_bins(dim: int, channels: int) -> int:
    """Frequency bins F of a map flattened channel-major per frame (dim = channels * F)."""
    if channels < 1 or dim % channels or dim < channels:
        raise UsageError(f"map_channels={channels} does not divide the feature size {dim}; "
                         f"a map input needs dim = channels * bins")
    return dim // channels


def unflatten_map(x: torch.Tensor, channels: int) -> torch.Tensor:
    """x: (B, T, C * F), C-major per frame -> (B, C, F, T)."""
    b, t, d = x.shape
    return x.view(b, t, channels, d // channels).permute(0, 2, 3, 1)


def channel_linear(lin: nn.Linear | None, e: torch.Tensor) -> torch.Tensor:
    """Apply `lin` to the channel axis of e: (B, C, F, T) -> (B, C', F, T); no-op when lin is None."""
    return e if lin is None else lin(e.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


def _node_bn(bn: nn.BatchNorm1d, x: torch.Tensor) -> torch.Tensor:
    """BatchNorm over (B, N, C) nodes; a single node in a single clip uses the running statistics."""
    x = x.transpose(1, 2)
    if bn.training and x.shape[0] * x.shape[2] == 1:
        x = F.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)
    else:
        x = bn(x)
    return x.transpose(1, 2)


class GraphAttention(nn.Module):
    """Homogeneous GAT layer: pairwise (x_i * x_j) attention, aggregation + residual projection."""

    def __init__(self, din: int, dout: int, temp: float = 2.0):
        super().__init__()
        self.att_proj, self.att_w = nn.Linear(din, dout), nn.Linear(dout, 1, bias=False)
        self.with_att, self.without_att = nn.Linear(din, dout), nn.Linear(din, dout)
        self.bn, self.temp = nn.BatchNorm1d(dout), temp

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, N, din) -> (B, N, dout)."""
        att = self.att_w(torch.tanh(self.att_proj(x.unsqueeze(2) * x.unsqueeze(1)))).squeeze(-1)  # (B, N, N)
        att = (att / self.temp).softmax(dim=-1)
        out = self.with_att(att @ x) + self.without_att(x)
        return F.selu(_node_bn(self.bn, out))


class HeteroGraphAttention(nn.Module):
    """Heterogeneous layer over spectral (type 1) and temporal (type 2) nodes plus a master node."""

    def __init__(self, din: int, dout: int, temp: float = 100.0):
        super().__init__()
        self.proj1, self.proj2 = nn.Linear(din, din), nn.Linear(din, din)
        self.att_proj, self.att_master = nn.Linear(din, dout), nn.Linear(din, dout)
        self.att_w = nn.Parameter(torch.randn(3, dout) * 0.1)  # type pairs 11, 22, 12/21
        self.att_w_master = nn.Parameter(torch.randn(dout) * 0.1)
        self.with_att, self.without_att = nn.Linear(din, dout), nn.Linear(din, dout)
        self.m_with_att, self.m_without_att = nn.Linear(din, dout), nn.Linear(din, dout)
        self.bn, self.temp = nn.BatchNorm1d(dout), temp

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, master: torch.Tensor):
        """x1: (B, N1, din), x2: (B, N2, din), master: (B, 1, din) -> same shapes with dout."""
        n1 = x1.shape[1]
        x = torch.cat([self.proj1(x1), self.proj2(x2)], dim=1)                 # (B, N, din)
        pair = torch.tanh(self.att_proj(x.unsqueeze(2) * x.unsqueeze(1)))      # (B, N, N, dout)
        types = torch.ones(x.shape[1], dtype=torch.long, device=x.device)
        types[:n1] = 0
        block = torch.where(types[:, None] == types[None, :], types[:, None], torch.full_like(types[:, None], 2))
        att = (pair * self.att_w[block]).sum(-1) / self.temp                   # (B, N, N)
        x_new = self.with_att(att.softmax(-1) @ x) + self.without_att(x)
        m_att = (torch.tanh(self.att_master(x * master)) * self.att_w_master).sum(-1) / self.temp  # (B, N)
        master = self.m_with_att(m_att.softmax(-1).unsqueeze(1) @ x) + self.m_without_att(master)
        x_new = F.selu(_node_bn(self.bn, x_new))
        return x_new[:, :n1], x_new[:, n1:], master


class GraphPool(nn.Module):
    """Keep the top `ratio` of nodes by a learned sigmoid score (at least one), scaled by it."""

    def __init__(self, dim: int, ratio: float):
        super().__init__()
        self.score, self.ratio = nn.Linear(dim, 1), ratio

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = torch.sigmoid(self.score(x))                                        # (B, N, 1)
        k = max(1, int(x.shape[1] * self.ratio))
        idx = s.squeeze(-1).topk(k, dim=1).indices.unsqueeze(-1).expand(-1, -1, x.shape[-1])
        return torch.gather(x * s, 1, idx)


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, pool: bool):
        super().__init__()
        self.body = nn.Sequential(nn.BatchNorm2d(cin), nn.SELU(), nn.Conv2d(cin, cout, (2, 3), padding=(1, 1)),
                                  nn.BatchNorm2d(cout), nn.SELU(), nn.Conv2d(cout, cout, (2, 3), padding=(0, 1)))
        self.skip = nn.Conv2d(cin, cout, (1, 3), padding=(0, 1)) if cin != cout else nn.Identity()
        self.pool = nn.MaxPool2d((1, 2), ceil_mode=True) if pool else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.body(x) + self.skip(x))


class Branch(nn.Module):
    """Two stacked heterogeneous layers with graph pooling in between (one AASIST branch)."""

    def __init__(self, dim: int):
        super().__init__()
        self.l1, self.l2 = HeteroGraphAttention(dim, dim), HeteroGraphAttention(dim, dim)
        self.pool_s, self.pool_t = GraphPool(dim, 0.5), GraphPool(dim, 0.5)

    def forward(self, s, t, master):
        s1, t1, m1 = self.l1(s, t, master)
        s1, t1 = self.pool_s(s1), self.pool_t(t1)
        s2, t2, m2 = self.l2(s1, t1, m1)
        return s1 + s2, t1 + t2, m1 + m2


class AASISTSmall(nn.Module):
    """(B, T, D) SSL features -> embedding (B, 5 * gat_dim); or (B, T, C * F) encoded maps with map_channels=C."""

    def __init__(self, dim: int, proj_dim: int = 128, gat_dim: int = 32, dropout: float = 0.1,
                 map_channels: int | None = None):
        super().__init__()
        c = gat_dim
        self.map_channels = map_channels
        if map_channels is None:
            self.proj = nn.Linear(dim, proj_dim)
            self.first = nn.Sequential(nn.MaxPool2d((3, 3), ceil_mode=True), nn.BatchNorm2d(1), nn.SELU())
            self.encoder = nn.Sequential(ResBlock(1, c, False), ResBlock(c, c, True), ResBlock(c, c, False),
                                         ResBlock(c, c, True))
            n_freq = -(-proj_dim // 3)
        else:  # the map is already encoded; only its channels may need matching to the graph width
            n_freq = map_bins(dim, map_channels)
            self.map_proj = nn.Linear(map_channels, c) if map_channels != c else None
        self.pos_s = nn.Parameter(torch.zeros(1, n_freq, c))
        self.gat_s, self.gat_t = GraphAttention(c, c), GraphAttention(c, c)
        self.pool_s, self.pool_t = GraphPool(c, 0.5), GraphPool(c, 0.5)
        self.master = nn.Parameter(torch.randn(2, 1, 1, c))
        self.branches = nn.ModuleList([Branch(c), Branch(c)])
        self.drop = nn.Dropout(dropout)
        self.embed_dim = 5 * c

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, T, D) -> (B, 5 * gat_dim)."""
        if self.map_channels is None:
            x = self.first(self.proj(x).transpose(1, 2).unsqueeze(1))  # (B, 1, F, T/3)
            e = self.encoder(x)                                        # (B, C, F, T')
        else:
            e = channel_linear(self.map_proj, unflatten_map(x, self.map_channels))  # (B, C, F, T)
        s = e.abs().amax(dim=3).transpose(1, 2) + self.pos_s       # spectral nodes (B, F, C)
        t = e.abs().amax(dim=2).transpose(1, 2)                    # temporal nodes (B, T', C)
        s, t = self.pool_s(self.gat_s(s)), self.pool_t(self.gat_t(t))
        outs = [br(s, t, self.master[k].expand(x.shape[0], -1, -1)) for k, br in enumerate(self.branches)]
        s = torch.maximum(outs[0][0], outs[1][0])
        t = torch.maximum(outs[0][1], outs[1][1])
        m = torch.maximum(outs[0][2], outs[1][2])
        emb = torch.cat([t.abs().amax(1), t.mean(1), s.abs().amax(1), s.mean(1), m.squeeze(1)], dim=-1)
        return self.drop(emb)

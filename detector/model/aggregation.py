"""Layer aggregators: (B, L, T, D) hidden states -> (B, T, D) features and (B, L) layer weights.

Every aggregator returns its weights (rows sum to 1) so they can be logged and inspected. The two
that mix layers (attn, weighted) first normalise every layer's frame vectors (LayerNorm over D, no
affine): hidden-state norms grow by orders of magnitude through an SSL encoder, and without this the
deepest layers would dominate any sum by their norm alone, whatever the learned weights say.
"""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from manifests.errors import UsageError


def normalize_layers(h: torch.Tensor) -> torch.Tensor:
    """(B, L, T, D) -> the same with every frame vector of every layer at zero mean, unit variance over D."""
    return F.layer_norm(h, h.shape[-1:])


class AttnAggregator(nn.Module):
    """The paper's: normalise each layer, global-average-pool it over time -> (B, L, D); a 1-D conv
    along the LAYER axis -> (B, L) scores; softmax over layers; weighted sum of the normalised layers.

    What the conv sees: the sequence of L layer vectors of one clip, each a D-channel input (its
    time-averaged features), so layer l's score depends on layers l-1, l, l+1 (kernel 3, zero-padded at
    both ends). What it does not see: time (pooled away before it) and other clips. The weights are
    therefore per clip, not global."""

    def __init__(self, num_layers: int, dim: int, kernel: int = 3):
        super().__init__()
        self.conv = nn.Conv1d(dim, 1, kernel, padding=kernel // 2)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = normalize_layers(h)
        pooled = h.mean(dim=2)                                 # (B, L, D)
        scores = self.conv(pooled.transpose(1, 2)).squeeze(1)  # (B, L)
        w = scores.softmax(dim=-1)
        return torch.einsum("bl,bltd->btd", w, h), w


class WeightedAggregator(nn.Module):
    """One learned logit per layer, softmax-normalised (s3prl Featurizer), over the normalised layers."""

    def __init__(self, num_layers: int, dim: int):
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(num_layers))

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        w = self.logits.softmax(dim=0)
        return torch.einsum("l,bltd->btd", w, normalize_layers(h)), w.expand(h.shape[0], -1)


class LastAggregator(nn.Module):
    """The final layer only, as it comes (weights one-hot on it): the baseline of the paper."""

    def __init__(self, num_layers: int, dim: int):
        super().__init__()

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        w = torch.zeros(h.shape[0], h.shape[1], dtype=h.dtype, device=h.device)
        w[:, -1] = 1.0
        return h[:, -1], w


AGGREGATORS = {"attn": AttnAggregator, "weighted": WeightedAggregator, "last": LastAggregator}


def build_aggregator(name: str, num_layers: int, dim: int) -> nn.Module:
    if name not in AGGREGATORS:
        raise UsageError(f"unknown aggregation {name!r}; allowed: {', '.join(AGGREGATORS)}")
    return AGGREGATORS[name](num_layers, dim)

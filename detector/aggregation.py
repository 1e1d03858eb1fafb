"""Layer aggregators: (B, L, T, D) hidden states -> (B, T, D) features and (B, L) layer weights.

Every aggregator returns its weights (rows sum to 1) so they can be logged and inspected.
"""
from __future__ import annotations

import torch
from torch import nn

from manifests.errors import UsageError


class AttnAggregator(nn.Module):
    """The paper's: global-average-pool each layer over time -> (B, L, D); a 1-D conv across the
    layer axis (D channels in, 1 out) -> (B, L) scores; softmax over layers; weighted sum."""

    def __init__(self, num_layers: int, dim: int, kernel: int = 3):
        super().__init__()
        self.conv = nn.Conv1d(dim, 1, kernel, padding=kernel // 2)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pooled = h.mean(dim=2)                                 # (B, L, D)
        scores = self.conv(pooled.transpose(1, 2)).squeeze(1)  # (B, L)
        w = scores.softmax(dim=-1)
        return torch.einsum("bl,bltd->btd", w, h), w


class WeightedAggregator(nn.Module):
    """One learned logit per layer, softmax-normalised (s3prl Featurizer)."""

    def __init__(self, num_layers: int, dim: int):
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(num_layers))

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        w = self.logits.softmax(dim=0)
        return torch.einsum("l,bltd->btd", w, h), w.expand(h.shape[0], -1)


class LastAggregator(nn.Module):
    """The final layer only (weights one-hot on it)."""

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

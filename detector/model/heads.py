"""The two optional heads of the recipe study (issue 28): a projection for the contrastive terms and a
one-class scoring head."""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F


def projection(dim: int) -> nn.Module:
    """(B, dim) -> (B, dim): the MLP the contrastive terms see with `contrastive_head: proj` (SimCLR style), so
    that they shape a layer of their own and the classifier reads the back-end embedding before it."""
    return nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim))


class OneClassHead(nn.Module):
    """(B, dim) -> (B, 1) cosine of each embedding to a learned bona fide centre, in [-1, 1] (OC-softmax's
    score, Zhang et al. 2021): higher = more likely bona fide, like the linear head's logit."""

    def __init__(self, dim: int):
        super().__init__()
        self.centre = nn.Parameter(F.normalize(torch.randn(dim), dim=0))

    def forward(self, emb: torch.Tensor) -> torch.Tensor:
        return F.normalize(emb, dim=-1).matmul(F.normalize(self.centre, dim=0)).unsqueeze(-1)

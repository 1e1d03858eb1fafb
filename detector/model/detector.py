"""The detector: front-end -> layer aggregator -> back-end -> head (one bona fide logit)."""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn
import torch.nn.functional as F

from .aggregation import build_aggregator
from .backends import build_backend
from ..config import ModelConfig
from .frontends import build_frontend


class Output(NamedTuple):
    logit: torch.Tensor          # (B,) bona fide logit: higher = more likely bona fide
    embedding: torch.Tensor      # (B, E) L2-normalised, for the contrastive terms
    layer_weights: torch.Tensor  # (B, L) aggregation weights, rows sum to 1


class Detector(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.frontend = build_frontend(cfg.frontend, cfg.finetune, cfg.tiny_hidden, cfg.tiny_layers)
        self.aggregator = build_aggregator(cfg.aggregation, self.frontend.num_layers, self.frontend.dim)
        self.backend = build_backend(cfg.backend, self.frontend.dim, cfg, getattr(self.frontend, "map_channels", None))
        self.head = nn.Linear(self.backend.embed_dim, 1)

    def forward(self, wav: torch.Tensor) -> Output:
        """wav: (B, T) float32 at 16 kHz."""
        feats, w = self.aggregator(self.frontend(wav))
        emb = self.backend.embed(feats)
        return Output(self.head(emb).squeeze(-1), F.normalize(emb, dim=-1), w)

    def embed(self, wav: torch.Tensor) -> torch.Tensor:
        """(B, T) -> (B, E) L2-normalised embedding."""
        return self.forward(wav).embedding

    def score(self, wav: torch.Tensor) -> torch.Tensor:
        """(B, T) -> (B,) bona fide logit."""
        return self.forward(wav).logit

    def saved_state(self) -> dict[str, torch.Tensor]:
        """What a checkpoint stores: everything, minus a frozen pretrained front-end (re-loaded from its source)."""
        state = self.state_dict()
        if getattr(self.frontend, "pretrained", False) and not getattr(self.frontend, "trainable", True):
            state = {k: v for k, v in state.items() if not k.startswith("frontend.")}
        return state

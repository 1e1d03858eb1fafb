"""Back-ends: (B, T, D) features -> embedding (B, E) for the contrastive terms, and a bona fide logit."""
from __future__ import annotations

import torch
from torch import nn

from manifests.errors import UsageError

AASIST_SIZES = ("small", "full", "original", "original-l")


class LinearBackend(nn.Module):
    """Mean + std pooling over time, a two-layer MLP to the embedding, a linear head."""

    def __init__(self, dim: int, embed_dim: int = 64, dropout: float = 0.1, **_):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(2 * dim, embed_dim), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(embed_dim, embed_dim))
        self.embed_dim = embed_dim

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, T, D) -> (B, E)."""
        return self.mlp(torch.cat([x.mean(1), x.std(1, unbiased=False)], dim=-1))


def aasist_size(cfg) -> str:
    """The AASIST size a ModelConfig asks for: 'auto' is the paper's full size on a pretrained SSL front-end
    (xlsr, hf:...), the small one on the CPU front-ends."""
    if cfg.aasist_size != "auto":
        return cfg.aasist_size
    pretrained_ssl = cfg.frontend == "xlsr" or cfg.frontend.startswith("hf:")
    return "full" if pretrained_ssl else "small"


def AASIST(dim: int, proj_dim: int = 128, gat_dim: int = 32, dropout: float = 0.1, *,
           size: str = "small", map_channels: int | None = None) -> nn.Module:
    """The AASIST back-end, `embed(x: (B, T, dim)) -> (B, embed_dim)`.

    size: "small" (AASISTSmall, embed_dim 5 * gat_dim) | "full" (AASISTFull, the SSL-AASIST of
    Tak et al. 2022, embed_dim 160; uses proj_dim, ignores gat_dim and dropout for the reference's) |
    "original" / "original-l" (AASISTOriginal, the graph part of the raw-waveform AASIST / AASIST-L,
    embed_dim 160; needs map_channels; ignores proj_dim, gat_dim and dropout for the reference's).
    map_channels: None for SSL features; C when x is an encoded map (B, T, C * F), C-major per frame.
    """
    if size == "small":
        from .aasist import AASISTSmall

        return AASISTSmall(dim, proj_dim, gat_dim, dropout, map_channels=map_channels)
    if size == "full":
        from .aasist_full import AASISTFull

        return AASISTFull(dim, proj_dim, map_channels=map_channels)
    if size in ("original", "original-l"):
        from .aasist_original import AASISTOriginal  # the raw-waveform AASIST's graph part, on sinc maps

        return AASISTOriginal(dim, map_channels, size)
    raise UsageError(f"unknown AASIST size {size!r}; allowed: {', '.join(AASIST_SIZES)}")


def build_backend(name: str, dim: int, cfg, map_channels: int | None = None) -> nn.Module:
    """`aasist` | `linear` | `lcnn-lstm` (lcnn.py) | `rawnetlite` (rawnetlite.py) | `rawgat-st` (rawgat.py), sized
    from the ModelConfig `cfg`; `map_channels`: the front-end already made an encoded spectro-temporal map (see
    aasist.py beside this file)."""
    if name == "linear":
        return LinearBackend(dim, embed_dim=cfg.embed_dim, dropout=cfg.dropout)
    if name == "aasist":
        return AASIST(dim, proj_dim=cfg.proj_dim, gat_dim=cfg.gat_dim, dropout=cfg.dropout, size=aasist_size(cfg),
                      map_channels=map_channels)
    if name == "lcnn-lstm":
        from .lcnn import LCNNLSTM

        return LCNNLSTM(dim, dropout=cfg.dropout)
    if name == "rawnetlite":
        from .rawnetlite import RawNetLiteGRU

        return RawNetLiteGRU(dim, embed_dim=cfg.embed_dim)
    if name == "rawgat-st":
        from .rawgat import RawGATST

        return RawGATST(dim, map_channels)
    raise UsageError(f"unknown back-end {name!r}; allowed: aasist, linear, lcnn-lstm, rawnetlite, rawgat-st")

"""The detector: front-end -> layer aggregator -> back-end -> head (one bona fide logit)."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

from .aggregation import build_aggregator
from .backends import build_backend
from ..config import ModelConfig
from .frontends import build_frontend
from .heads import OneClassHead, projection


CACHE_BYTES = 4 << 30  # frozen front-end outputs kept in memory at most (then encoded again each time)


class Output(NamedTuple):
    logit: torch.Tensor          # (B,) bona fide logit: higher = more likely bona fide
    embedding: torch.Tensor      # (B, E) L2-normalised, for the contrastive terms
    layer_weights: torch.Tensor  # (B, L) aggregation weights, rows sum to 1
    embedding_norm: torch.Tensor | None = None  # (B,) norm of `embedding` before the L2 normalisation


class Detector(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.frontend = build_frontend(cfg.frontend, bool(cfg.finetune), cfg.tiny_hidden, cfg.tiny_layers)
        self.aggregator = build_aggregator(cfg.aggregation, self.frontend.num_layers, self.frontend.dim)
        self.backend = build_backend(cfg.backend, self.frontend.dim, cfg, getattr(self.frontend, "map_channels", None))
        dim = self.backend.embed_dim
        self.head = OneClassHead(dim) if cfg.score_head == "oc" else nn.Linear(dim, 1)
        # contrastive_head proj: the contrastive terms see an MLP of the embedding; the head reads the embedding
        self.proj = projection(dim) if cfg.contrastive_head == "proj" else None

    frozen_frontend = False                       # set by freeze_frontend()
    frontend_cache: dict[bytes, torch.Tensor] | None = None
    frontend_cache_dir: Path | None = None
    cache_bytes = 0

    def freeze_frontend(self, cache: bool = False, cache_dir: str | os.PathLike | None = None) -> None:
        """Keep the front-end fixed while the rest trains: no gradients, and eval mode (BatchNorm statistics,
        no dropout) even in train(). With `cache`, its outputs are memoised by the content of each input row:
        a frozen front-end is a function of its input, so repeated crops (fixed crops, no augmentation) are
        encoded once; `cache_dir` also keeps them on disk, keyed by the front-end's weights too, so the runs
        of a study that share a frozen encoder encode each crop once between them."""
        self.frontend.requires_grad_(False)
        self.frozen_frontend = True
        self.frontend_cache = {} if cache or cache_dir else None
        if cache_dir:
            h = hashlib.blake2b(digest_size=8)
            for k, v in sorted(self.frontend.state_dict().items()):
                h.update(k.encode())
                h.update(v.detach().cpu().contiguous().numpy().tobytes())
            self.frontend_cache_dir = Path(cache_dir) / f"{self.cfg.frontend}-{h.hexdigest()}"
            self.frontend_cache_dir.mkdir(parents=True, exist_ok=True)
        self.frontend.eval()

    def train(self, mode: bool = True) -> "Detector":
        super().train(mode)
        if self.frozen_frontend:
            self.frontend.eval()
        return self

    def _cached(self, key: bytes) -> torch.Tensor | None:
        hit = self.frontend_cache.get(key)
        if hit is None and self.frontend_cache_dir is not None:
            path = self.frontend_cache_dir / f"{key.hex()}.npy"
            if path.is_file():
                hit = torch.from_numpy(np.load(path))
                self._keep(key, hit)
        return hit

    def _keep(self, key: bytes, out: torch.Tensor) -> None:
        if self.cache_bytes + out.nbytes <= CACHE_BYTES:  # beyond the cap, read or encode again each time
            self.frontend_cache[key] = out
            self.cache_bytes += out.nbytes

    def encode(self, wav: torch.Tensor) -> torch.Tensor:
        """The front-end's output for wav (B, T), from the cache where a frozen front-end saw the same row."""
        if self.frontend_cache is None:
            return self.frontend(wav)
        rows = wav.detach().cpu().contiguous()
        keys = [hashlib.blake2b(r.numpy().tobytes(), digest_size=16).digest() for r in rows]
        got = [self._cached(k) for k in keys]
        todo = [i for i, g in enumerate(got) if g is None]
        if todo:
            with torch.no_grad():
                out = self.frontend(wav[todo]).detach().cpu()
            for i, o in zip(todo, out):
                got[i] = o.clone()
                self._keep(keys[i], got[i])
                if self.frontend_cache_dir is not None:  # temp + rename: a killed run leaves no half file
                    path = self.frontend_cache_dir / f"{keys[i].hex()}.npy"
                    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npy")
                    np.save(tmp, got[i].numpy())
                    os.replace(tmp, path)
        return torch.stack(got).to(wav.device)

    def forward(self, wav: torch.Tensor) -> Output:
        """wav: (B, T) float32 at 16 kHz."""
        feats, w = self.aggregator(self.encode(wav))
        emb = self.backend.embed(feats)
        z = emb if self.proj is None else self.proj(emb)
        return Output(self.head(emb).squeeze(-1), F.normalize(z, dim=-1), w, z.norm(dim=-1))

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

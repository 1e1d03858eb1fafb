"""RACL: L = (1-α-β)·L_cls + α·L_std + β·L_enh + γ·L_reg, as pure functions of batch tensors; beside it
the one-class OC-softmax loss (`--loss oc`) and the CE-only warm-up schedule of the RACL weights.

labels: (B,) float, 1 = bona fide, 0 = spoof. Embeddings (B, E) (the model L2-normalises them,
so pair distances lie in [0, 2]). Every term is connected to the graph even when it is zero,
so gradients stay finite.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from ..config import TrainConfig


def classification(logit: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of the bona fide logit (= 2-class CE on [0, logit])."""
    return F.binary_cross_entropy_with_logits(logit, labels)


def pair_contrastive(emb: torch.Tensor, labels: torch.Tensor, margin: float,
                     mask: torch.Tensor | None = None, pull_spoofs: bool = True) -> torch.Tensor:
    """Mean over pairs i<j (where `mask`, (B, B) bool, allows) of
    d^2 for same-label pairs and max(0, margin - d)^2 for different-label pairs; d = ||e_i - e_j||.
    pull_spoofs=False leaves (spoof, spoof) pairs out: spoofs are only pushed away from bona fide, not
    pulled into one cluster. Zero (graph-connected) when there are no pairs."""
    b = emb.shape[0]
    diff = emb.unsqueeze(1) - emb.unsqueeze(0)
    d = (diff.pow(2).sum(-1) + 1e-12).sqrt()  # eps: finite gradient at d = 0
    same = labels.unsqueeze(1) == labels.unsqueeze(0)
    per_pair = torch.where(same, d.pow(2), F.relu(margin - d).pow(2))
    keep = torch.triu(torch.ones(b, b, dtype=torch.bool, device=emb.device), diagonal=1)
    if mask is not None:
        keep = keep & (mask | mask.T)
    if not pull_spoofs:
        keep = keep & ~(same & (labels.unsqueeze(1) < 0.5))
    if not keep.any():
        return emb.sum() * 0.0
    return per_pair[keep].mean()


def enhancement_mask(utt_ids: list[str], source_ids: list[str], kinds: list[str], labels: torch.Tensor) -> torch.Tensor:
    """(B, B) bool: True at (i, j) where i is a bona fide original and j a reconstruction of it."""
    b = len(utt_ids)
    mask = torch.zeros(b, b, dtype=torch.bool)
    for i in range(b):
        if kinds[i] == "reconstruction" or labels[i] < 0.5:
            continue
        for j in range(b):
            if kinds[j] == "reconstruction" and source_ids[j] == utt_ids[i]:
                mask[i, j] = True
    return mask


def within_class_variance(emb: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean over the classes present of mean_i ||e_i - mean_class||^2."""
    terms = []
    for c in (0.0, 1.0):
        sel = emb[labels == c]
        if sel.shape[0] > 0:
            terms.append((sel - sel.mean(0, keepdim=True)).pow(2).sum(-1).mean())
    return torch.stack(terms).mean() if terms else emb.sum() * 0.0


def racl(logit: torch.Tensor, emb: torch.Tensor, labels: torch.Tensor, enh_mask: torch.Tensor,
         alpha: float = 0.6, beta: float = 0.1, gamma: float = 0.3, margin: float = 1.0,
         std_pull: str = "all") -> dict[str, torch.Tensor]:
    """Every term and the total: keys cls, std, enh, reg, total. std_pull="bonafide": L_std pulls only bona
    fide pairs together (`pair_contrastive(pull_spoofs=False)`); "all" is the paper's."""
    terms = {"cls": classification(logit, labels),
             "std": pair_contrastive(emb, labels, margin, pull_spoofs=std_pull == "all"),
             "enh": pair_contrastive(emb, labels, margin, enh_mask.to(emb.device)),
             "reg": within_class_variance(emb, labels)}
    terms["total"] = (1 - alpha - beta) * terms["cls"] + alpha * terms["std"] + beta * terms["enh"] + gamma * terms["reg"]
    return terms


def cross_entropy(logit: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
    """The `--loss ce` baseline, in the same dict form."""
    cls = classification(logit, labels)
    return {"cls": cls, "total": cls}


def racl_weights(tcfg: "TrainConfig", epoch: int) -> tuple[float, float, float]:
    """(alpha, beta, gamma) of an epoch: all 0 during the first `warmup_epochs` (CE alone, weight 1), then the
    configured ones."""
    if epoch < tcfg.warmup_epochs:
        return 0.0, 0.0, 0.0
    return tcfg.alpha, tcfg.beta, tcfg.gamma


def one_class_softmax(score: torch.Tensor, labels: torch.Tensor, m_real: float = 0.9, m_fake: float = 0.2,
                      scale: float = 20.0) -> dict[str, torch.Tensor]:
    """OC-softmax (Zhang, Jiang & Duan 2021, "One-class learning towards synthetic voice spoofing detection",
    IEEE Signal Processing Letters 28): score (B,) = cosine of each embedding to a learned bona fide centre, in
    [-1, 1]. Bona fide is pulled inside cosine m_real, spoofs pushed below m_fake; only bona fide is compacted.
    mean_i softplus(scale * (m_real - s_i)) over bona fide, softplus(scale * (s_i - m_fake)) over spoofs.
    Keys oc, total."""
    per = one_class_per_clip(score, labels > 0.5, m_real, m_fake, scale)
    loss = per.mean()
    return {"oc": loss, "total": loss}


def one_class_per_clip(score: torch.Tensor, bona: torch.Tensor, m_real: float, m_fake: float,
                       scale: float) -> torch.Tensor:
    """(B,) OC-softmax loss of each clip (bona: (B,) bool)."""
    return torch.where(bona, F.softplus(scale * (m_real - score)), F.softplus(scale * (score - m_fake)))

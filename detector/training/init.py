"""Starting a training from weights that exist (`--init`) and choosing which parts of the model train.

`--init pretrained:NAME` starts from a published countermeasure (model/pretrained/registry.py); `--init RUN`
from a hardspoof checkpoint. The model config is the start's own: an architecture option that contradicts it is
an error. The start trains whole unless `model.finetune` is false (`--freeze`): that freezes the encoder (the front-end; its outputs may be cached, see
`Detector.freeze_frontend`), `train.train_last N` trains only the last N blocks (the head counts as one), and
the weights that came from the start learn at `lr * pretrained_lr_scale`.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from torch import nn

from manifests.errors import UsageError

from .. import checkpoint
from ..config import ModelConfig, RunConfig
from ..model.pretrained import registry


def _architecture(spec: str) -> dict:
    """The ModelConfig fields that build the start's architecture."""
    if registry.is_pretrained(spec):
        return {k: v for k, v in registry.model_config(spec).items() if k != "finetune"}
    folder = Path(spec)
    folder = folder / "final" if (folder / "final" / "config.json").is_file() else folder
    if not (folder / "config.json").is_file():
        raise UsageError(f"--init {spec}: neither pretrained:NAME (see `detector models list`) nor a finished "
                         "checkpoint (a run folder with final/, or a checkpoint folder)")
    saved = checkpoint.read_config(folder).model
    return {f.name: getattr(saved, f.name) for f in dataclasses.fields(saved) if f.name != "finetune"}


def init_config(cfg: RunConfig, explicit: frozenset[str] | set[str] = frozenset()) -> RunConfig:
    """`cfg` with the model section of its `train.init` start. A model field that differs from the start's is an
    error when it was given explicitly (`explicit`: ModelConfig field names) or differs from the default;
    finetune, dropout and other training choices stay the user's."""
    if not cfg.train.init:
        return cfg
    arch = _architecture(cfg.train.init)
    default = ModelConfig()
    clash = [k for k, v in arch.items() if getattr(cfg.model, k) != v
             and (k in explicit or getattr(cfg.model, k) != getattr(default, k))]
    if clash:
        asked = ", ".join(f"{k}={getattr(cfg.model, k)!r}" for k in clash)
        start = ", ".join(f"{k}={arch[k]!r}" for k in clash)
        raise UsageError(f"--init {cfg.train.init} is a model with {start}; {asked} does not match it: leave the "
                         "architecture options out, or start from another model")
    return cfg.replace("model", **arch)


def load_start(model: nn.Module, spec: str) -> set[str]:
    """Load the start's weights into `model`; returns the names of the parameters that came from it."""
    if registry.is_pretrained(spec):
        state = registry.converted_state(spec)
        registry.load_into(model, state, f"--init {spec}")
    else:
        start, _, _ = checkpoint.load(spec)
        state = start.saved_state()
        checkpoint.load_state(model, state, f"--init {spec}")
    return {n for n, _ in model.named_parameters() if n in state}


def blocks(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The model's blocks in forward order, for `train_last`: each parameterised child of the front-end,
    aggregator and back-end (a Sequential or ModuleList counted per member), then the head."""
    out = []
    for part in ("frontend", "aggregator", "backend"):
        for name, child in getattr(model, part).named_children():
            members = child.named_children() if isinstance(child, (nn.Sequential, nn.ModuleList)) else [("", child)]
            for sub, m in members:
                if any(True for _ in m.parameters()):
                    out.append((".".join(x for x in (part, name, sub) if x), m))
        loose = [p for n, p in getattr(model, part).named_parameters(recurse=False)]
        if loose:  # parameters held by the part itself (e.g. AASIST's master nodes): one block of their own
            out.append((part, getattr(model, part)))
    out.append(("head", model.head))
    return out


def choose_trainable(model: nn.Module, cfg: RunConfig) -> None:
    """Freeze what the config leaves fixed: the encoder of a start when `model.finetune` is false (unset trains
    it); everything
    but the last `train.train_last` blocks when set."""
    if cfg.train.init and cfg.model.finetune is False and any(True for _ in model.frontend.parameters()):
        model.freeze_frontend(cfg.train.cache_frontend, cfg.train.frontend_cache_dir)
    n = cfg.train.train_last
    if n is not None:
        bs = blocks(model)
        if n > len(bs):
            raise UsageError(f"--train-last {n}: this model has {len(bs)} blocks ({', '.join(b for b, _ in bs)})")
        keep = {id(p) for _, m in bs[len(bs) - n:] for p in m.parameters()}
        for p in model.parameters():
            if id(p) not in keep:
                p.requires_grad_(False)
        if not any(p.requires_grad for p in model.frontend.parameters()) and not model.frozen_frontend:
            model.freeze_frontend(cfg.train.cache_frontend, cfg.train.frontend_cache_dir)


def param_groups(model: nn.Module, started: set[str], lr: float, scale: float) -> list[dict]:
    """Adam parameter groups: weights from the start at lr * scale, the others at lr (trainable ones only)."""
    old = [p for n, p in model.named_parameters() if p.requires_grad and n in started]
    new = [p for n, p in model.named_parameters() if p.requires_grad and n not in started]
    if not old and not new:
        raise UsageError("nothing left to train: every parameter is frozen (check --freeze / --train-last)")
    return [g for g in ({"params": old, "lr": lr * scale}, {"params": new, "lr": lr}) if g["params"]]

"""Mapping an authors' state dict onto a Detector's keys, refusing one of another architecture in one line.

Used by lcnn.py and rawnetlite.py: each gives the rename rule (reference key -> Detector key, and back for
naming what is missing), an optional value transform (e.g. a sign flip of the head) and the reference keys
that hold fixed, non-trained values which hardspoof recomputes instead (checked, not copied).
"""
from __future__ import annotations

from typing import Callable

import torch

from manifests.errors import UsageError

Transform = Callable[[str, torch.Tensor], torch.Tensor]


def map_state(name: str, state: dict, want: dict[str, torch.Tensor], target_key: Callable[[str], str | None],
              reference_key: Callable[[str], str], transform: Transform | None = None,
              fixed: dict[str, tuple[torch.Tensor, float]] | None = None) -> dict[str, torch.Tensor]:
    """`state` (the authors' keys) -> a state dict with exactly the keys and shapes of `want`.

    fixed: reference key -> (the value hardspoof computes itself, abs tolerance); such a key must be present
    with that shape and value. Any other reference key must rename (target_key) onto a key of `want` with the
    same shape; every key of `want` must be filled. The first violation raises a one-line UsageError.
    """
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in state.items()):
        raise UsageError(f"a {name} checkpoint must be a state dict (str -> tensor), got {type(state).__name__}")
    fixed = fixed or {}
    state = {k.removeprefix("module."): v.detach().to("cpu") for k, v in state.items()}
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key in fixed:
            expect, tol = fixed[key]
            if tuple(value.shape) != tuple(expect.shape):
                raise UsageError(f"not a {name} checkpoint: {key!r} has shape {tuple(value.shape)}, "
                                 f"{name} has {tuple(expect.shape)}")
            err = float((value.float() - expect).abs().max()) if value.numel() else 0.0
            if err > tol:
                raise UsageError(f"not a {name} checkpoint: its fixed {key!r} differs from {name}'s by {err:.3g}")
            continue
        target = target_key(key)
        if target is None or target not in want:
            raise UsageError(f"not a {name} checkpoint: unexpected key {key!r}")
        if tuple(value.shape) != tuple(want[target].shape):
            raise UsageError(f"not a {name} checkpoint: {key!r} has shape {tuple(value.shape)}, "
                             f"{name} has {tuple(want[target].shape)}")
        out[target] = transform(key, value) if transform else value
    missing = [reference_key(k) for k in want if k not in out] + [k for k in fixed if k not in state]
    if missing:
        raise UsageError(f"not a {name} checkpoint: {len(missing)} key(s) missing, the first {missing[0]!r}")
    return out


def built_state(fields: dict) -> dict[str, torch.Tensor]:
    """The state dict of a freshly built `Detector(ModelConfig(**fields))`: the keys and shapes to fill."""
    from ...config import ModelConfig
    from ..detector import Detector

    return Detector(ModelConfig(**fields)).state_dict()

"""RawNetLite (Di Pierno et al., IJCNN 2025 VERIMEDIA workshop; adipiz99/RawNetLite @ fcb0fe8), loaded from
its authors' state dicts.

`VARIANTS[name]` builds the architecture as `Detector(ModelConfig(**fields))`: the `rawnetlite` front-end
(frontends/rawnetlite.py: peak normalisation of the whole clip, its first 48,000 samples zero-padded, conv
+ three residual blocks, pooled to 64 frames), the `last` aggregation and the `rawnetlite` back-end
(backends/rawnetlite.py: BiGRU, last frame, fc1 -> the 64-dim embedding).
- `rawnetlite`: `models/triple_cross_domain_focal_rawnet_lite.pt` (FakeOrReal + ASVspoof 2021 + CodecFake);
- `rawnetlite-cross-domain`: `models/cross_domain_focal_rawnet_lite.pt` (FakeOrReal + ASVspoof 2021).

Score: the reference outputs p(fake) = sigmoid(fc2(h)); the bona fide logit is -fc2(h), so the head is fc2
with weight and bias negated. Input: the whole utterance (any length, padded batches allowed); the
front-end does the reference's preparation (audio_preprocessor.preprocess_audio at 16 kHz mono).
"""
from __future__ import annotations

import re
from typing import Any

import torch

from manifests.errors import UsageError
from ._mapping import built_state, map_state

_FIELDS = {"frontend": "rawnetlite", "aggregation": "last", "backend": "rawnetlite", "embed_dim": 64,
           "finetune": False}
VARIANTS: dict[str, dict[str, Any]] = {"rawnetlite": dict(_FIELDS), "rawnetlite-cross-domain": dict(_FIELDS)}


def _target_key(key: str) -> str | None:
    """A reference key -> the Detector key it fills (None: no such reference key)."""
    if m := re.fullmatch(r"(conv_pre|bn_pre)\.(.+)", key):
        return f"frontend.{m[1]}.{m[2]}"
    if m := re.fullmatch(r"resblock([123])\.(.+)", key):
        return f"frontend.blocks.{int(m[1]) - 1}.{m[2]}"
    if m := re.fullmatch(r"gru\.(.+)", key):
        return "backend.gru." + m[1]
    if m := re.fullmatch(r"fc1\.(weight|bias)", key):
        return "backend.fc." + m[1]
    if m := re.fullmatch(r"fc2\.(weight|bias)", key):
        return "head." + m[1]
    return None


def _reference_key(key: str) -> str:
    """A Detector key -> the reference key that fills it (the inverse of _target_key)."""
    if m := re.fullmatch(r"frontend\.blocks\.(\d)\.(.+)", key):
        return f"resblock{int(m[1]) + 1}.{m[2]}"
    return (key.removeprefix("frontend.").removeprefix("backend.").replace("fc.", "fc1.", 1)
            .replace("head.", "fc2.", 1))


def _negate_head(key: str, value: torch.Tensor) -> torch.Tensor:
    """fc2 gives the fake logit; the detector's head gives the bona fide logit = its negation."""
    return -value if key.startswith("fc2.") else value


def convert(name: str, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The authors' state dict -> a state dict for `Detector(ModelConfig(**VARIANTS[name]))`; one-line
    UsageError at the first key or shape that does not fit."""
    if name not in VARIANTS:
        raise UsageError(f"unknown RawNetLite variant {name!r}; allowed: {', '.join(VARIANTS)}")
    return map_state(name, state, built_state(VARIANTS[name]), _target_key, _reference_key, _negate_head)

"""The raw-waveform AASIST family, loaded from its authors' state dicts into hardspoof's own modules.

`VARIANTS[name]` holds the ModelConfig fields that build the architecture (`Detector(ModelConfig(**fields))`):
for AASIST the sinc front-end (frontends/sinc.py: sinc layer, first max-pool + BN + SELU, residual encoder),
the `last` aggregation (the front-end has one layer) and the original AASIST graph part
(backends/aasist_original.py). `convert(name, state)` maps the authors' state dict to that Detector's keys.

- `aasist`: clovaai/aasist `models/weights/AASIST.pth` (config/AASIST.conf), trained on ASVspoof 2019 LA.
- `aasist-l`: the same repository's `AASIST-L.pth` (config/AASIST-L.conf), the 85K-parameter light model.
- `aasist-asvspoof5`: asvspoof-challenge/asvspoof5 `Baseline-AASIST/models/weights/AASIST/best.pth`
  (AASIST_ASVspoof5.conf: the AASIST architecture, model code identical to clovaai's), trained on ASVspoof 5.
- `rawgat-st`: eurecom-asp/RawGAT-ST-antispoofing `Pre_trained_models/RawGAT_ST_mul/Best_epoch.pth`
  (model.py, model_config_RawGAT_ST.yaml): the same sinc layer, two encoders (frontends/rawgat.py) and
  spectral, temporal and fused graphs (backends/rawgat.py); its output layer is `proj_node` Linear(7, 2).

The reference's output layer Linear(E, 2) gives [spoof, bona fide] logits (their training code labels
bona fide 1); hardspoof's head is Linear(E, 1) with weight W[1] - W[0] and bias b[1] - b[0], so its
logit is out[:, 1] - out[:, 0], the log-odds of bona fide under the reference's softmax.
Input convention of all four: 16 kHz mono, the first 64,600 samples, repeated when shorter (`repeat_pad`).
"""
from __future__ import annotations

import re
from typing import Any

import numpy as np
import torch

from manifests.errors import UsageError

NB_SAMP = 64_600  # samples the reference feeds its model (~4.04 s at 16 kHz)

VARIANTS: dict[str, dict[str, Any]] = {
    "aasist": {"frontend": "sinc", "aggregation": "last", "backend": "aasist", "aasist_size": "original"},
    "aasist-l": {"frontend": "sinc-l", "aggregation": "last", "backend": "aasist", "aasist_size": "original-l"},
    "aasist-asvspoof5": {"frontend": "sinc", "aggregation": "last", "backend": "aasist", "aasist_size": "original"},
    "rawgat-st": {"frontend": "rawgat-st", "aggregation": "last", "backend": "rawgat-st"},
}
HEAD = {"rawgat-st": "proj_node"}  # the reference's two-class output layer, where it is not `out_layer`


def repeat_pad(wav: np.ndarray, max_len: int = NB_SAMP) -> np.ndarray:
    """wav (T,) -> (max_len,): the first max_len samples, or wav tiled until it is max_len long
    (clovaai/aasist `data_utils.pad`, the evaluation crop)."""
    if wav.ndim != 1 or wav.shape[0] == 0:
        raise UsageError(f"repeat_pad expects a non-empty 1-D waveform, got shape {tuple(wav.shape)}")
    if wav.shape[0] >= max_len:
        return wav[:max_len]
    return np.tile(wav, max_len // wav.shape[0] + 1)[:max_len]


def _target_key(key: str) -> str:
    """A reference key -> the Detector key it becomes (the head's two rows are handled apart)."""
    if key.startswith("first_bn."):
        return "frontend." + key
    if re.match(r"encoder\d?\.", key):  # AASIST's encoder, RawGAT-ST's encoder1 / encoder2
        return re.sub(r"^(encoder\d?)\.(\d+)\.0\.", r"frontend.\1.\2.", key)
    return "backend." + key


def _reference_key(name: str, key: str) -> str:
    """A Detector key -> the reference key that fills it (the inverse of _target_key, and head -> out_layer)."""
    if key.startswith("head."):
        return HEAD.get(name, "out_layer") + "." + key.removeprefix("head.")
    if re.match(r"frontend\.encoder\d?\.", key):
        return re.sub(r"^frontend\.(encoder\d?)\.(\d+)\.", r"\1.\2.0.", key)
    return key.removeprefix("frontend.").removeprefix("backend.")


def _variant(name: str) -> dict[str, Any]:
    if name not in VARIANTS:
        raise UsageError(f"unknown AASIST variant {name!r}; allowed: {', '.join(VARIANTS)}")
    return VARIANTS[name]


def expected_state(name: str) -> dict[str, torch.Tensor]:
    """The state dict of a freshly built Detector for variant `name` (the keys and shapes convert fills)."""
    from ...config import ModelConfig
    from ..detector import Detector

    return Detector(ModelConfig(**_variant(name))).state_dict()


def convert(name: str, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The authors' state dict of variant `name` -> a state dict for `Detector(ModelConfig(**VARIANTS[name]))`.

    Every reference key must be used and every Detector key filled, with equal shapes; the first
    mismatch raises a one-line UsageError. A DataParallel `module.` prefix is dropped.
    """
    want = expected_state(name)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UsageError(f"a {name} checkpoint must be a state dict of tensors, got {type(state).__name__}")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    out: dict[str, torch.Tensor] = {}
    head_prefix = HEAD.get(name, "out_layer") + "."
    for key, value in state.items():
        head = key.startswith(head_prefix)
        target = "head." + key.removeprefix(head_prefix) if head else _target_key(key)
        if target not in want:
            raise UsageError(f"not an {name} checkpoint: unexpected key {key!r}")
        shape = tuple(want[target].shape)
        expect = (2,) + shape[1:] if head else shape  # the head's one row comes from the reference's two
        if tuple(value.shape) != expect:
            raise UsageError(f"not an {name} checkpoint: {key!r} has shape {tuple(value.shape)}, {name} has {expect}")
        out[target] = (value[1] - value[0]).reshape(shape) if head else value
    missing = [_reference_key(name, k) for k in want if k not in out]
    if missing:
        raise UsageError(f"not an {name} checkpoint: {len(missing)} key(s) missing, the first {missing[0]!r}")
    return out


def load_detector(name: str, state: dict[str, torch.Tensor]):
    """A Detector of variant `name` in eval mode holding the authors' weights `state` (see convert)."""
    from ...config import ModelConfig
    from ..detector import Detector

    model = Detector(ModelConfig(**_variant(name)))
    model.load_state_dict(convert(name, state), strict=True)
    return model.eval()

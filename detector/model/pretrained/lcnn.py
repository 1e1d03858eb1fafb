"""LFCC-LCNN-LSTM of Xin Wang's project-NN-Pytorch-scripts, loaded from its authors' state dict.

`VARIANTS["lfcc-lcnn-lstm"]` builds the architecture as `Detector(ModelConfig(**fields))`: the `lfcc` front-end
(frontends/lfcc.py at its defaults = the reference's LFCC(320, 160, 512, 16000, 20, with_energy=True):
20 LFCC + delta + delta-delta), the `last` aggregation (one layer) and the `lcnn-lstm` back-end
(backends/lcnn.py). The checkpoint is `project/04-asvspoof2021-toy/lfcc-lcnn-lstm-sig_toy_example/
__pretrained/trained_network.pt` (commit 112ec0f), trained on ASVspoof 2019 LA.

Score: the reference's inference output is its last Linear's output (training: sigmoid of it against the
protocol's bona fide = 1, spoof = 0), already a bona fide logit: the head takes `m_output_act.0` unchanged.
Input: the whole utterance, raw 16 kHz float waveform, no crop, no padding, no normalisation; one clip per
batch (the reference scores one file at a time; zero padding in a batch would enter the LSTMs and the time
mean). Clips under 2,400 samples (16 LFCC frames) are refused.
The checkpoint's input_mean/std and output_mean/std (0 and 1, unused by the reference's forward) and its
LFCC filter bank and DCT matrix (fixed, recomputed by the front-end) are checked, not copied.
"""
from __future__ import annotations

import re
from typing import Any

import torch

from manifests.errors import UsageError
from ..frontends.lfcc import dct_matrix, linear_filterbank
from ._mapping import built_state, map_state

VARIANTS: dict[str, dict[str, Any]] = {
    "lfcc-lcnn-lstm": {"frontend": "lfcc", "aggregation": "last", "backend": "lcnn-lstm", "dropout": 0.7,
                       "finetune": False},
}


def _target_key(key: str) -> str | None:
    """A reference key -> the Detector key it fills (None: no such reference key)."""
    if m := re.fullmatch(r"m_transform\.0\.(\d+\..+)", key):
        return "backend.convs." + m[1]
    if m := re.fullmatch(r"m_before_pooling\.0\.(\d)\.l_blstm\.(\w+)_l0(_reverse)?", key):
        return f"backend.blstm.{m[2]}_l{m[1]}{m[3] or ''}"
    if m := re.fullmatch(r"m_output_act\.0\.(weight|bias)", key):
        return "head." + m[1]
    return None


def _reference_key(key: str) -> str:
    """A Detector key -> the reference key that fills it (the inverse of _target_key)."""
    if m := re.fullmatch(r"backend\.convs\.(.+)", key):
        return "m_transform.0." + m[1]
    if m := re.fullmatch(r"backend\.blstm\.(\w+)_l(\d)(_reverse)?", key):
        return f"m_before_pooling.0.{m[2]}.l_blstm.{m[1]}_l0{m[3] or ''}"
    return "m_output_act.0." + key.removeprefix("head.")


def _fixed() -> dict[str, tuple[torch.Tensor, float]]:
    """Reference keys of fixed values: (the value hardspoof uses, tolerance)."""
    one = torch.ones(1)
    return {"input_mean": (0 * one, 0.0), "input_std": (one, 0.0), "output_mean": (0 * one, 0.0),
            "output_std": (one, 0.0),
            "m_frontend.0.lfcc_fb": (linear_filterbank(512, 16000, 20), 1e-5),
            "m_frontend.0.l_dct.weight": (dct_matrix(20, 20).T, 1e-5)}


def convert(name: str, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The authors' state dict -> a state dict for `Detector(ModelConfig(**VARIANTS[name]))`; one-line
    UsageError at the first key or shape that does not fit."""
    if name not in VARIANTS:
        raise UsageError(f"unknown LCNN variant {name!r}; allowed: {', '.join(VARIANTS)}")
    return map_state(name, state, built_state(VARIANTS[name]), _target_key, _reference_key, fixed=_fixed())

"""What every pretrained back-end's tests check, shared by test_backends_pretrained.py and
test_backends_generators.py: a store of tiny random models, the checkpoint and store load paths, the
offline error and the edge inputs."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from manifests.errors import UsageError
from reconstruct.backends import get
from tests.conftest import speechlike


def make_store(root: Path, names) -> Path:
    """A model store holding a tiny random model of each back-end in `names`."""
    for name in names:
        get(name).random_weights(root / name, tiny=True)
    return root


def check_out(out: np.ndarray, like: np.ndarray) -> None:
    assert out.shape == like.shape and out.dtype == np.float32
    assert np.isfinite(out).all() and np.abs(out).max() <= 1.0


def check_checkpoint_path(be, params: dict, stochastic: bool, weights_sha256: str) -> None:
    """Right length and range, deterministic for a seed, another seed changes only a stochastic model, the
    given parameters recorded, and the sha256 of the weights it loaded."""
    wav = speechlike(0.5, 16000, seed=3)
    a = be.reconstruct(wav, 16000, seed=7)
    check_out(a, wav)
    assert np.array_equal(a, be.reconstruct(wav, 16000, seed=7)), "not deterministic for a seed"
    assert np.array_equal(a, be.reconstruct(wav, 16000, seed=8)) != stochastic
    assert set(params) <= set(json.loads(be.params_json()))
    assert re.fullmatch(r"[0-9a-f]{64}", be.checkpoint_sha256)
    assert be.checkpoint_sha256 == weights_sha256


def check_store_path(name: str, params: dict, loaded, store: Path, monkeypatch) -> None:
    """Without --checkpoint the store's folder is found, and it is the same model."""
    monkeypatch.setenv("HARDSPOOF_MODELS", str(store))
    cls = get(name)
    assert cls.weights_location() == "store"
    be = cls(params)
    assert be.checkpoint_sha256 == loaded.checkpoint_sha256
    wav = speechlike(0.3, 16000)
    assert np.array_equal(be.reconstruct(wav, 16000, seed=1), loaded.reconstruct(wav, 16000, seed=1))


def check_offline_error(name: str, params: dict, empty: Path, monkeypatch) -> None:
    """No weights offline: one error naming the model, its source and the pull command."""
    monkeypatch.setenv("HARDSPOOF_MODELS", str(empty))
    cls = get(name)
    assert cls.weights_location() is None
    with pytest.raises(UsageError) as e:
        cls(params)
    msg = str(e.value)
    assert name in msg and cls.weights in msg and f"reconstruct models pull {name}" in msg


def check_edge_inputs(be, rates=(8000, 22050, 44100, 48000)) -> None:
    """Foreign rates (resampled in and back out), silence, stereo refused, too short refused, barely long enough."""
    for sr in rates:
        wav = speechlike(0.25, sr)
        check_out(be.reconstruct(wav, sr, seed=0), wav)
    silence = np.zeros(4000, np.float32)
    check_out(be.reconstruct(silence, 16000), silence)
    with pytest.raises(ValueError, match="mono"):
        be.reconstruct(np.zeros((2, 4000), np.float32), 16000)  # stereo: the caller must downmix
    with pytest.raises(ValueError, match="shorter than"):
        be.reconstruct(np.zeros(3, np.float32), 16000)  # shorter than one model hop
    just = np.full(be.min_samples() * 16000 // be.sample_rate + 2, 0.1, np.float32)
    check_out(be.reconstruct(just, 16000), just)

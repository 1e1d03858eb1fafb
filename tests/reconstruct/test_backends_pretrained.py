"""Pretrained back-ends, loaded through the real resolution path from tiny random models saved in
each library's real on-disk format (encodec state dict, speechbrain hparams folder, save_pretrained)."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from manifests.errors import UsageError
from reconstruct import weights as W
from reconstruct.backends import get
from tests.conftest import speechlike

torch.set_num_threads(1)

FAST = {  # cheap parameters per back-end
    "encodec-24khz": {"bandwidth_kbps": 1.5},
    "encodec-48khz": {"bandwidth_kbps": 3.0},
    "dac-16khz": {"n_quantizers": 2},
    "dac-24khz": {},
    "dac-44khz": {},
    "hifigan-libritts-16k": {},
    "hifigan-ljspeech-22k": {},
    "diffwave-ljspeech": {"steps": 3},
    "audioldm2-sdedit": {"steps": 4, "strength": 0.5},
}
NAMES = sorted(FAST)
STOCHASTIC = {"diffwave-ljspeech", "audioldm2-sdedit"}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A model store holding a tiny random model of every pretrained back-end."""
    root = tmp_path_factory.mktemp("store")
    for name in NAMES:
        get(name).random_weights(root / name, tiny=True)
    return root


@pytest.fixture(scope="module")
def loaded(store):
    """One back-end instance per name, loaded via --checkpoint (shared by the invariant tests)."""
    return {name: get(name)(FAST[name], checkpoint=store / name) for name in NAMES}


def _check_out(out: np.ndarray, like: np.ndarray) -> None:
    assert out.shape == like.shape and out.dtype == np.float32
    assert np.isfinite(out).all() and np.abs(out).max() <= 1.0


@pytest.mark.parametrize("name", NAMES)
def test_checkpoint_path_invariants(name, loaded, store):
    be = loaded[name]
    wav = speechlike(0.5, 16000, seed=3)
    a = be.reconstruct(wav, 16000, seed=7)
    _check_out(a, wav)
    assert np.array_equal(a, be.reconstruct(wav, 16000, seed=7)), "not deterministic for a seed"
    if name in STOCHASTIC:
        assert not np.array_equal(a, be.reconstruct(wav, 16000, seed=8))
    params = json.loads(be.params_json())
    assert set(FAST[name]) <= set(params)
    assert re.fullmatch(r"[0-9a-f]{64}", be.checkpoint_sha256)
    # EnCodec records the state-dict file's sha256 (its official name carries a prefix of it)
    weights = next((store / name).glob("*.th")) if name.startswith("encodec") else store / name
    assert be.checkpoint_sha256 == W.checkpoint_sha256(weights)


@pytest.mark.parametrize("name", NAMES)
def test_store_path_loads_same_weights(name, loaded, store, monkeypatch):
    monkeypatch.setenv("HARDSPOOF_MODELS", str(store))
    cls = get(name)
    assert cls.weights_location() == "store"
    be = cls(FAST[name])  # no --checkpoint: resolved from the store
    assert be.checkpoint_sha256 == loaded[name].checkpoint_sha256
    wav = speechlike(0.3, 16000)
    assert np.array_equal(be.reconstruct(wav, 16000, seed=1), loaded[name].reconstruct(wav, 16000, seed=1))


@pytest.mark.parametrize("name", NAMES)
def test_offline_without_weights_names_model_source_and_pull(name, tmp_path, monkeypatch):
    monkeypatch.setenv("HARDSPOOF_MODELS", str(tmp_path / "empty"))
    cls = get(name)
    with pytest.raises(UsageError) as e:
        cls(FAST[name])
    msg = str(e.value)
    assert name in msg and cls.weights in msg and f"reconstruct models pull {name}" in msg


@pytest.mark.parametrize("name", NAMES)
def test_edge_inputs(name, loaded):
    be = loaded[name]
    for sr in (8000, 22050, 44100, 48000):  # foreign rates: resampled in and back out
        wav = speechlike(0.25, sr)
        _check_out(be.reconstruct(wav, sr, seed=0), wav)
    silence = np.zeros(4000, np.float32)
    _check_out(be.reconstruct(silence, 16000), silence)
    with pytest.raises(ValueError, match="mono"):
        be.reconstruct(np.zeros((2, 4000), np.float32), 16000)  # stereo: the caller must downmix
    with pytest.raises(ValueError, match="shorter than"):
        be.reconstruct(np.zeros(3, np.float32), 16000)  # shorter than one model hop
    just = np.full(be.min_samples() * 16000 // be.sample_rate + 2, 0.1, np.float32)  # barely long enough
    _check_out(be.reconstruct(just, 16000), just)


def test_bad_parameters_are_usage_errors(store):
    with pytest.raises(UsageError, match="3, 6, 12, 24"):
        get("encodec-48khz")({"bandwidth_kbps": 1.5}, checkpoint=store / "encodec-48khz")
    with pytest.raises(UsageError, match="one of"):
        get("encodec-24khz")({"bandwidth_kbps": 5})
    with pytest.raises(UsageError, match="codebooks"):
        get("dac-16khz")({"n_quantizers": 99}, checkpoint=store / "dac-16khz")
    with pytest.raises(UsageError, match="strength"):
        get("audioldm2-sdedit")({"strength": 0.0})
    with pytest.raises(UsageError, match="steps"):
        get("diffwave-ljspeech")({"steps": 1})


def test_wrong_folder_is_a_clear_error(store):
    with pytest.raises(UsageError, match="speechbrain model folder"):
        get("hifigan-libritts-16k")(checkpoint=store / "dac-16khz")
    with pytest.raises(UsageError, match="AudioLDM 2 folder"):
        get("audioldm2-sdedit")(checkpoint=store / "dac-16khz")
    with pytest.raises(UsageError, match=r"\.th"):
        get("encodec-24khz")(checkpoint=store / "dac-16khz")


def test_encodec_official_name_is_checksummed(store, tmp_path):
    official = tmp_path / "encodec_24khz-d7cc33bc.th"
    official.symlink_to(next((store / "encodec-24khz").glob("*.th")))
    with pytest.raises(UsageError, match="corrupt"):
        get("encodec-24khz")(checkpoint=tmp_path)


def test_missing_library_names_what_to_install():
    with pytest.raises(UsageError, match="pip install not-a-real-package"):
        W.require("not_a_real_module_xyz", "not-a-real-package")


def test_diffwave_fast_schedules_stay_in_training_range():
    from reconstruct.backends.diffwave import FAST_SCHEDULE, fast_schedule

    assert fast_schedule(6) == list(FAST_SCHEDULE)
    target = np.prod(1 - np.array(FAST_SCHEDULE))
    for steps in (2, 12, 49):
        s = fast_schedule(steps)
        assert len(s) == steps and s[0] == 1e-4 and np.all(np.diff(s) >= 0)
        assert np.isclose(np.prod(1 - np.array(s)), target)

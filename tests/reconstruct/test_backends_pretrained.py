"""Pretrained back-ends, loaded through the real resolution path from tiny random models saved in
each library's real on-disk format (encodec state dict, speechbrain hparams folder, save_pretrained)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from manifests.errors import UsageError
from reconstruct import weights as W
from reconstruct.backends import get
from tests.reconstruct.backend_checks import (check_checkpoint_path, check_edge_inputs, check_offline_error,
                                          check_store_path, make_store)

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
    return make_store(tmp_path_factory.mktemp("store"), NAMES)


@pytest.fixture(scope="module")
def loaded(store):
    """One back-end instance per name, loaded via --checkpoint (shared by the invariant tests)."""
    return {name: get(name)(FAST[name], checkpoint=store / name) for name in NAMES}


@pytest.mark.parametrize("name", NAMES)
def test_checkpoint_path_invariants(name, loaded, store):
    # EnCodec records the state-dict file's sha256 (its official name carries a prefix of it)
    weights = next((store / name).glob("*.th")) if name.startswith("encodec") else store / name
    check_checkpoint_path(loaded[name], FAST[name], name in STOCHASTIC, W.checkpoint_sha256(weights))


@pytest.mark.parametrize("name", NAMES)
def test_store_path_loads_same_weights(name, loaded, store, monkeypatch):
    check_store_path(name, FAST[name], loaded[name], store, monkeypatch)


@pytest.mark.parametrize("name", NAMES)
def test_offline_without_weights_names_model_source_and_pull(name, tmp_path, monkeypatch):
    check_offline_error(name, FAST[name], tmp_path / "empty", monkeypatch)


@pytest.mark.parametrize("name", NAMES)
def test_edge_inputs(name, loaded):
    check_edge_inputs(loaded[name])


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

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from manifests.errors import UsageError
from reconstruct.backends import available, get

from ..conftest import speechlike

WEIGHT_FREE = ["griffinlim", "opus", "mp3", "vorbis"]


@pytest.fixture(scope="module", params=WEIGHT_FREE)
def backend(request):
    return get(request.param)()


@pytest.mark.parametrize("sr", [8000, 16000, 22050, 44100, 48000])
def test_keeps_rate_length_dtype_and_range(backend, sr):
    wav = speechlike(0.7, sr, seed=3)
    out = backend.reconstruct(wav, sr, seed=1)
    assert out.shape == wav.shape and out.dtype == np.float32
    assert np.isfinite(out).all() and np.abs(out).max() <= 1.0
    assert np.abs(out).max() > 0.01  # something came back


def test_deterministic_for_a_seed(backend):
    wav = speechlike(0.5, 16000)
    assert np.array_equal(backend.reconstruct(wav, 16000, seed=7), backend.reconstruct(wav, 16000, seed=7))


def test_griffinlim_seed_changes_phase():
    gl = get("griffinlim")()
    wav = speechlike(0.5, 16000)
    assert not np.array_equal(gl.reconstruct(wav, 16000, seed=1), gl.reconstruct(wav, 16000, seed=2))


def test_silence_and_too_short(backend):
    silent = backend.reconstruct(np.zeros(8000, np.float32), 16000)
    assert np.isfinite(silent).all() and np.abs(silent).max() < 1e-3
    with pytest.raises(ValueError, match="shorter than"):
        backend.reconstruct(np.zeros(10, np.float32), 16000)


def test_rejects_nan_and_stereo(backend):
    with pytest.raises(ValueError, match="NaN"):
        backend.reconstruct(np.full(4000, np.nan, np.float32), 16000)
    with pytest.raises(ValueError, match="mono"):
        backend.reconstruct(np.zeros((2, 4000), np.float32), 16000)


@settings(max_examples=15, deadline=None)
@given(n=st.integers(min_value=1500, max_value=9000), sr=st.sampled_from([8000, 11025, 16000, 24000, 44100]))
def test_length_is_exact_for_any_length_and_rate(n, sr):
    out = get("griffinlim")({"n_iter": 2}).reconstruct(speechlike((n + 1) / sr, sr)[:n], sr)
    assert out.shape == (n,)


def test_codec_bitrate_lowers_quality():
    wav = speechlike(1.0, 16000)
    err = {kbps: np.mean((get("opus")({"bitrate_kbps": kbps}).reconstruct(wav, 16000) - wav) ** 2)
           for kbps in (8, 64)}
    assert err[8] > err[64]


def test_params_are_checked_and_recorded():
    assert '"bitrate_kbps": 24.0' in get("opus")({"bitrate_kbps": "24"}).params_json()
    with pytest.raises(UsageError, match="no parameter"):
        get("griffinlim")({"bitrate": 3})
    with pytest.raises(UsageError, match="bitrate_kbps must be"):
        get("opus")({"bitrate_kbps": 0})


def test_registry_lists_and_suggests():
    assert set(WEIGHT_FREE) <= set(available())
    assert available("vocoder") and all(get(n).method == "vocoder" for n in available("vocoder"))
    with pytest.raises(UsageError, match="Did you mean 'griffinlim'"):
        get("grifinlim")

"""Hardness metrics on signals with known answers."""
from __future__ import annotations

import numpy as np
import pytest

from reconstruct.hardness import harmonicity, lsd_db, snr_db
from tests.conftest import speechlike


def test_identical_signals():
    x = speechlike(1.0)
    assert lsd_db(x, x, 16000) == 0.0
    assert snr_db(x, x) == float("inf")


def test_known_noise_level_gives_known_snr():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(160000)
    noise = rng.standard_normal(160000)
    noise *= np.sqrt(np.sum(x ** 2) / np.sum(noise ** 2)) * 10 ** (-20 / 20)  # exactly 20 dB below
    assert snr_db(x, x + noise) == pytest.approx(20.0, abs=1e-9)


def test_lsd_of_a_constant_gain_is_the_gain_in_db():
    x = speechlike(1.0)
    assert lsd_db(x, 0.5 * x, 16000) == pytest.approx(20 * np.log10(2), abs=1e-3)


def test_lsd_grows_with_distortion_and_checks_lengths():
    x = speechlike(1.0)
    noise = np.random.default_rng(1).standard_normal(x.shape) * 0.01
    assert 0 < lsd_db(x, x + noise, 16000) < lsd_db(x, x + 10 * noise, 16000)
    with pytest.raises(ValueError, match="equal lengths"):
        lsd_db(x, x[:-1], 16000)


def test_harmonicity_separates_voiced_sound_from_noise():
    noise = np.random.default_rng(2).standard_normal(16000) * 0.1
    assert harmonicity(speechlike(1.0), 16000) > 2 * harmonicity(noise, 16000)

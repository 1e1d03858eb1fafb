"""LFCC front-end: shapes, filterbank/DCT/delta invariants, and agreement with the reference LFCC.

Fixture `fixtures/lfcc_reference.txt` was made once, offline, by running the unmodified `LFCC` class of
nii-yamagishilab/project-NN-Pytorch-scripts (`sandbox/util_frontend.py`, commit 112ec0f) as the ASVspoof
2021 LFCC-LCNN baseline builds it, LFCC(320, 160, 512, 16000, 20, with_energy=True), on `_signal()` below
(torch CPU, float32), and saving its (2, 21, 60) output with np.savetxt as (42, 60) rows.
"""
from pathlib import Path

import numpy as np
import pytest
import torch

from detector.model.frontends.lfcc import LFCCFrontend, dct_matrix, delta, linear_filterbank
from manifests.errors import UsageError

torch.set_num_threads(1)
FIXTURES = Path(__file__).parent / "fixtures"


def _signal() -> np.ndarray:
    """(2, 3200) float32: a 200 Hz -> 7 kHz chirp (0.5) + noise (0.05); a 1 kHz tone (0.3) + noise (0.01)."""
    sr, n = 16000, 3200
    t = np.arange(n) / sr
    noise = np.random.RandomState(0).standard_normal((2, n))
    chirp = 0.5 * np.sin(2 * np.pi * (200 * t + 0.5 * (7000 - 200) / (n / sr) * t ** 2))
    tone = 0.3 * np.sin(2 * np.pi * 1000 * t)
    return np.stack([chirp + 0.05 * noise[0], tone + 0.01 * noise[1]]).astype(np.float32)


def _tone(hz: float, n: int) -> torch.Tensor:
    """(1, n) float32 sine of amplitude 0.5 at 16 kHz, its phase computed in float64."""
    return (0.5 * torch.sin(2 * torch.pi * hz * torch.arange(n, dtype=torch.float64) / 16000)).float()[None]


def test_matches_reference_lfcc():
    expected = np.loadtxt(FIXTURES / "lfcc_reference.txt", dtype=np.float32).reshape(2, 21, 60)
    got = LFCCFrontend()(torch.from_numpy(_signal()))[:, 0].numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)  # measured max diff ~1e-6


@pytest.mark.parametrize("n, frames", [(16000, 101), (64600, 404), (16001, 101), (333, 3)])
def test_shapes_and_frame_count(n: int, frames: int):
    fe = LFCCFrontend()
    out = fe(0.1 * torch.randn(2, n))
    assert out.shape == (2, 1, frames, 60) and fe.num_frames(n) == frames
    assert (fe.num_layers, fe.dim, fe.map_channels, fe.trainable, fe.pretrained) == (1, 60, None, False, False)
    assert out.dtype == torch.float32


@pytest.mark.parametrize("wav", [torch.zeros(2, 16000), torch.rand(2, 16000, generator=torch.Generator().manual_seed(0)) * 2 - 1,
                                 torch.ones(1, 16000)])
def test_finite_on_silence_and_full_scale(wav: torch.Tensor):
    assert torch.isfinite(LFCCFrontend()(wav)).all()


def test_nothing_trainable_and_nothing_checkpointed():
    fe = LFCCFrontend()
    assert list(fe.parameters()) == [] and fe.state_dict() == {}


def test_tone_lands_in_its_linear_filter():
    """A tone at the centre of filter k: filter k holds almost all filterbank energy (filters 381 Hz apart)."""
    fe = LFCCFrontend()
    centres = torch.linspace(0, 8000, 22)[1:-1]
    for k in (0, 5, 12, 19):
        _, fb = fe.filterbank_energies(_tone(float(centres[k]), 16000))
        share = fb[0, 2:-2].sum(0) / fb[0, 2:-2].sum()   # the Hamming main lobe leaks ~3% to each neighbour
        assert int(share.argmax()) == k and share[k] > 0.9


def test_filterbank_is_linear_and_a_partition_of_unity():
    fb = linear_filterbank(512, 16000, 20)                      # (257, 20)
    peaks = fb.argmax(0).float() * 8000 / 256                   # Hz of each filter's top bin
    assert fb.shape == (257, 20) and torch.allclose(peaks.diff(), torch.full((19,), 8000 / 21), atol=8000 / 256)
    inner = fb[int(np.ceil(8000 / 21 / 31.25)):int(19 * 8000 / 21 / 31.25)]  # between first and last centre
    assert torch.allclose(inner.sum(1), torch.ones(inner.shape[0]), atol=1e-5)


def test_dct_is_orthonormal_and_invertible():
    m = dct_matrix(20, 20)
    assert torch.allclose(m.T @ m, torch.eye(20), atol=1e-6)
    fe = LFCCFrontend(with_energy=False)
    wav = torch.from_numpy(_signal())
    _, fb = fe.filterbank_energies(wav)
    static = fe(wav)[:, 0, :, :20]
    assert torch.allclose(static @ m.T, torch.log10(fb + torch.finfo(torch.float32).eps), atol=1e-4)


@pytest.mark.parametrize("wav", [torch.full((1, 8000), 0.5), _tone(1000.0, 8000)])
def test_delta_of_a_stationary_signal_is_zero(wav: torch.Tensor):
    """Frames fully inside a DC signal or a 1 kHz tone (its period divides the hop) are identical."""
    out = LFCCFrontend()(wav)[0, 0, 4:-4]
    assert out[:, :20].abs().max() > 0.1 and out[:, 20:].abs().max() < 1e-4


def test_delta_is_central_difference_with_repeated_edges():
    x = torch.tensor([[1.0, 2.0, 4.0, 7.0]]).unsqueeze(-1)
    assert delta(x).flatten().tolist() == [1.0, 3.0, 5.0, 3.0]


def test_bad_input_is_a_usage_error():
    with pytest.raises(UsageError, match="batch, samples"):
        LFCCFrontend()(torch.zeros(16000))
    with pytest.raises(UsageError, match="n_coef"):
        LFCCFrontend(n_coef=30)

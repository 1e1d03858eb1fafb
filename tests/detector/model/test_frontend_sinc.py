"""AASIST sinc front-end: shapes, the fixed mel sinc filterbank, a trainable encoder, and the reference.

Fixtures, made once offline from clovaai/aasist `models/AASIST.py` (commit a04c986), unmodified:
- `sinc_reference_filters.txt`: rows 1, 10, 35, 69 of `CONV(out_channels=70, kernel_size=128).band_pass`.
- `sinc_reference_encoder.txt`: the reference AASIST-L (config/AASIST-L.conf) computing
  conv_time -> |x| -> max_pool2d (3, 3) -> first_bn -> SELU -> encoder, in eval mode, on `_wav()` below,
  with its weights copied from `_deterministic("aasist-l")` below (encoder.i.0.conv1/bn2/conv2/conv_downsample
  -> encoder.i.conv1/bn2/conv2/conv_downsample; the unused, frozen bn1 has no effect); its (1, 24, 23, 2)
  output map saved with np.savetxt as (T=2, C*F) rows.
"""
from pathlib import Path

import numpy as np
import pytest
import torch

from detector.model.frontends.sinc import SincFrontend, sinc_filters
from manifests.errors import UsageError

torch.set_num_threads(1)
FIXTURES = Path(__file__).parent / "fixtures"

# Parameters: "aasist" 211,074 = the reference AASIST (AASIST.conf) first_bn (2) + encoder (211,072, of
# which the never-used bn1 layers hold 512, frozen here), counted by instantiating clovaai/aasist
# models/AASIST.py `Model` (whole model 297,866, the paper's "297K"); "aasist-l" 50,794 (reference
# encoder 50,792 with 272 in bn1, + 2; whole AASIST-L 85,306, the paper's "85K").
PARAMS = {"aasist": 211_074, "aasist-l": 50_794}
FROZEN_BN1 = {"aasist": 512, "aasist-l": 272}


def _wav() -> torch.Tensor:
    """(1, 4502) float32 Gaussian noise, std 0.3 (RandomState(1)); 4502 samples give 2 frames."""
    return torch.from_numpy((0.3 * np.random.RandomState(1).standard_normal((1, 4502))).astype(np.float32))


def _deterministic(size: str) -> SincFrontend:
    """A front-end in eval mode whose parameters are fixed sine patterns (conv weights scaled by fan-in)."""
    fe = SincFrontend(size).eval()
    with torch.no_grad():
        for i, (name, p) in enumerate((n, p) for n, p in fe.named_parameters() if p.requires_grad):
            wave = torch.sin(0.37 * torch.arange(p.numel(), dtype=torch.float64) + i).reshape(p.shape)
            if p.dim() > 1:
                p.copy_(1.5 * wave / p[0].numel() ** 0.5)
            else:
                p.copy_((1.0 if name.endswith("bn2.weight") or name == "first_bn.weight" else 0.0) + 0.1 * wave)
    return fe


def test_filters_match_reference():
    expected = np.loadtxt(FIXTURES / "sinc_reference_filters.txt", dtype=np.float32)
    filters, _ = sinc_filters(70, 128, 16000)
    assert filters.shape == (70, 129)
    np.testing.assert_allclose(filters[[1, 10, 35, 69]].numpy(), expected, atol=1e-6)  # the reference mixes float32


def test_encoder_matches_reference_aasist_l():
    expected = np.loadtxt(FIXTURES / "sinc_reference_encoder.txt", dtype=np.float32)   # (2, 24 * 23)
    with torch.no_grad():
        got = _deterministic("aasist-l")(_wav())
    assert got.shape == (1, 1, 2, 24 * 23)
    np.testing.assert_allclose(got[0, 0].numpy(), expected, rtol=1e-4, atol=1e-4)   # measured max diff 1.6e-5 of 14


@pytest.mark.parametrize("n, frames", [(16000, 7), (64600, 29), (20001, 9), (2315, 1)])
def test_shapes_and_frame_count(n: int, frames: int):
    fe = SincFrontend("aasist-l")
    with torch.no_grad():
        out = fe(0.1 * torch.randn(2, n))
    assert out.shape == (2, 1, frames, 24 * 23) and fe.num_frames(n) == frames
    assert (fe.num_layers, fe.dim, fe.map_channels, fe.map_freqs) == (1, 552, 24, 23)


def test_aasist_size_map_layout():
    fe = SincFrontend("aasist").eval()
    with torch.no_grad():
        out = fe(0.1 * torch.randn(1, 16000))
    assert out.shape == (1, 1, 7, 64 * 23) and fe.map_channels == 64
    assert out.view(1, 1, 7, 64, 23).shape[-2:] == (fe.map_channels, fe.map_freqs)


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("kind", ["silence", "full-scale"])
def test_finite_on_silence_and_full_scale_noise(kind: str, train: bool):
    g = torch.Generator().manual_seed(0)
    wav = torch.zeros(2, 8000) if kind == "silence" else torch.rand(2, 8000, generator=g) * 2 - 1
    with torch.no_grad():
        assert torch.isfinite(SincFrontend("aasist-l").train(train)(wav)).all()


def test_filters_are_mel_spaced_band_pass():
    filters, edges = sinc_filters()
    mel = 2595 * torch.log10(1 + edges / 700)
    assert edges[0] == 0 and abs(float(edges[-1]) - 8000) < 1e-6
    assert torch.allclose(mel.diff(), mel.diff()[0].expand(70), atol=1e-9)     # equal steps on the mel scale
    resp = torch.fft.rfft(filters.double(), n=16000).abs()                    # 1 Hz bins
    peak = resp.argmax(1)
    assert (peak.diff() >= 0).all()                                             # centres increase
    # 129 taps cannot resolve bands under ~100 Hz: filters 1-3 peak at DC, as in the reference
    for i in (4, 10, 35, 69):
        assert edges[i] <= peak[i] <= edges[i + 1]
    assert (resp[8:, 0] < 0.05 * resp[8:].amax(1)).all()                        # band-pass: DC rejected


def test_filterbank_fixed_encoder_trainable_and_gradient_flows():
    fe = SincFrontend("aasist-l")
    names = [n for n, _ in fe.named_parameters()]
    assert "filters" not in names and "filters" not in fe.state_dict()
    frozen = [n for n, p in fe.named_parameters() if not p.requires_grad]
    assert frozen and all(".bn1." in n for n in frozen) and fe.trainable and not fe.pretrained
    fe(0.1 * torch.randn(2, 4502)).pow(2).mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in fe.parameters() if p.requires_grad)


@pytest.mark.parametrize("size", ["aasist", "aasist-l"])
def test_both_sizes_build_with_reference_parameter_counts(size: str):
    fe = SincFrontend(size)
    assert sum(p.numel() for p in fe.parameters()) == PARAMS[size]
    assert sum(p.numel() for p in fe.parameters() if not p.requires_grad) == FROZEN_BN1[size]


def test_freq_mask_only_in_training_and_leaves_filters_intact():
    fe = _deterministic("aasist-l")
    masked = _deterministic("aasist-l")
    masked.freq_mask = True
    wav = _wav()
    with torch.no_grad():
        assert torch.equal(fe(wav), masked(wav))
        before = masked.filters.clone()
        torch.manual_seed(3)  # draws a mask 6 filters wide
        assert not torch.allclose(masked.train()(wav), fe.train()(wav))
    assert torch.equal(masked.filters, before)


def test_bad_input_is_a_usage_error():
    with pytest.raises(UsageError, match="at least 2315 samples"):
        SincFrontend("aasist-l")(torch.zeros(1, 2314))
    with pytest.raises(UsageError, match="batch, samples"):
        SincFrontend("aasist-l")(torch.zeros(16000))
    with pytest.raises(UsageError, match="allowed: aasist, aasist-l"):
        SincFrontend("big")

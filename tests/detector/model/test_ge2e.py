"""The `ge2e` front-end: resemblyzer's mel and GE2E encoder reproduced, weights from the installed package.

fixtures/ge2e_mel.npz holds what the real resemblyzer 0.1.4 (librosa 0.11.0) computes for `signal()`:
`mel` = wav_to_mel_spectrogram(x) (51, 40); `embed` / `embed_quiet` = VoiceEncoder's embedding (256,) of x and of
normalize_volume(0.01 * x, -30, increase_only=True). Re-make it in a scratch venv (webrtcvad needs pkg_resources):

    python3 -m venv /tmp/ge2e-ref && /tmp/ge2e-ref/bin/pip install resemblyzer==0.1.4 librosa "setuptools<81"
    /tmp/ge2e-ref/bin/python - tests/detector/model/fixtures/ge2e_mel.npz <<'EOF'  # from the repo root
    import sys, numpy as np, librosa, torch
    from resemblyzer import VoiceEncoder, normalize_volume, wav_to_mel_spectrogram
    # paste signal() from this file here
    x, enc = signal(), VoiceEncoder(device="cpu", verbose=False)
    def embed(wav):
        with torch.no_grad():
            return enc(torch.from_numpy(wav_to_mel_spectrogram(wav))[None])[0].numpy()
    quiet = normalize_volume(0.01 * x, -30, increase_only=True)
    np.savez_compressed(sys.argv[1], mel=wav_to_mel_spectrogram(x), embed=embed(x), embed_quiet=embed(quiet),
                        versions=np.array(f"resemblyzer 0.1.4, librosa {librosa.__version__}, numpy {np.__version__}"))
    EOF
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from detector.model.frontends import ge2e as frontend_ge2e
from detector.model.frontends.ge2e import GE2EFrontend, normalize_volume, power_mel
from manifests.errors import UsageError

FIXTURE = Path(__file__).parent / "fixtures" / "ge2e_mel.npz"


def signal(n: int = 8000, sr: int = 16000) -> np.ndarray:
    """0.5 s: a harmonic chirp (120 -> 520 Hz), amplitude-modulated, plus integer-hash white noise; (n,) float32."""
    t = np.arange(n) / sr
    phase = 2 * np.pi * (120 * t + 400 * t ** 2)
    x = sum(np.sin(k * phase) / k for k in range(1, 11)) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
    h = np.arange(n, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)  # splitmix64-style hash: exact everywhere
    h ^= h >> np.uint64(29); h *= np.uint64(0xBF58476D1CE4E5B9); h ^= h >> np.uint64(32)  # noqa: E702
    noise = (h >> np.uint64(40)).astype(np.float64) / 2 ** 24 - 0.5
    return (0.3 * x / np.abs(x).max() + 0.05 * noise).astype(np.float32)


@pytest.fixture(scope="module")
def fe() -> GE2EFrontend:
    if importlib.util.find_spec("resemblyzer") is None:
        pytest.skip("resemblyzer not installed")
    return GE2EFrontend()


@pytest.fixture(scope="module")
def checkpoint() -> dict:
    if importlib.util.find_spec("resemblyzer") is None:
        pytest.skip("resemblyzer not installed")
    return torch.load(frontend_ge2e.weights_path(), map_location="cpu", weights_only=True)["model_state"]


def test_mel_matches_resemblyzer():
    ref = np.load(FIXTURE)["mel"]
    mel = power_mel(torch.from_numpy(signal())[None])[0].numpy()
    assert mel.shape == ref.shape == (51, 40) and mel.dtype == np.float32
    assert np.max(np.abs(mel - ref) / ref) < 1e-5  # measured 3.4e-7


def embedding(h: torch.Tensor, state: dict) -> np.ndarray:
    """resemblyzer's VoiceEncoder head on the last layer's last frame: (1, 3, T', 256) -> (256,)."""
    e = torch.relu(h[:, -1, -1] @ state["linear.weight"].T + state["linear.bias"])
    return (e / e.norm(dim=1, keepdim=True))[0].numpy()


@pytest.mark.parametrize("scale,key", [(1.0, "embed"), (0.01, "embed_quiet")])
def test_end_to_end_matches_voice_encoder(fe, checkpoint, scale, key):
    """Volume normalisation + mel + LSTMs give VoiceEncoder's embedding (the quiet clip is raised to -30 dBFS)."""
    h = fe(torch.from_numpy(scale * signal())[None])
    np.testing.assert_allclose(embedding(h, checkpoint), np.load(FIXTURE)[key], atol=1e-5)


def test_weights_come_from_the_package_file(fe, checkpoint):
    assert frontend_ge2e.weights_path().parent.name == "resemblyzer"
    assert "resemblyzer" not in sys.modules and "webrtcvad" not in sys.modules  # found, never imported
    for k in range(3):
        assert torch.equal(fe.lstms[k].weight_hh_l0, checkpoint[f"lstm.weight_hh_l{k}"])
        assert torch.equal(fe.lstms[k].bias_ih_l0, checkpoint[f"lstm.bias_ih_l{k}"])
    assert sum(p.numel() for p in fe.parameters()) == 1_357_824


def test_layers_equal_a_three_layer_lstm(fe, checkpoint):
    ref = torch.nn.LSTM(40, 256, 3, batch_first=True)
    ref.load_state_dict({k[5:]: v for k, v in checkpoint.items() if k.startswith("lstm.")})
    wav = torch.from_numpy(np.stack([signal(), 0.5 * signal()[::-1].copy()]))
    h = fe(wav)
    with torch.no_grad():
        out, (h_n, _) = ref(power_mel(normalize_volume(wav)))
    torch.testing.assert_close(h[:, 2], out, atol=1e-5, rtol=0)
    torch.testing.assert_close(h[:, :, -1], h_n.transpose(0, 1), atol=1e-5, rtol=0)  # every layer's last frame


@pytest.mark.parametrize("samples", [1, 159, 400, 8000, 16001])
def test_shape(fe, samples):
    h = fe(torch.randn(2, samples).clamp(-1, 1))
    assert h.shape == (2, fe.num_layers, 1 + samples // 160, fe.dim) == (2, 3, 1 + samples // 160, 256)
    assert h.dtype == torch.float32 and torch.isfinite(h).all()


def test_frozen(fe):
    assert not any(p.requires_grad for p in fe.parameters())
    fe.train()
    assert not fe.training and not any(m.training for m in fe.modules())
    with torch.enable_grad():
        assert not fe(torch.randn(1, 1600, requires_grad=True)).requires_grad


def test_silence_is_finite(fe):
    h = fe(torch.zeros(2, 4000))
    assert torch.isfinite(h).all()


def test_volume_normalisation_raises_quiet_clips_only():
    loud, quiet, zero = torch.from_numpy(signal()), torch.from_numpy(0.01 * signal()), torch.zeros(8000)
    out = normalize_volume(torch.stack([loud, quiet, zero]))
    torch.testing.assert_close(out[0], loud)
    assert abs(20 * torch.log10(out[1].pow(2).mean().sqrt()).item() + 30) < 1e-3
    assert torch.equal(out[2], zero)


def test_bad_shape(fe):
    with pytest.raises(ValueError, match=r"\(B, T\)"):
        fe(torch.zeros(4000))


def test_missing_package_is_a_one_line_usage_error(monkeypatch):
    monkeypatch.setattr(frontend_ge2e.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(UsageError) as info:
        GE2EFrontend()
    assert str(info.value) == frontend_ge2e.INSTALL_HINT and "\n" not in str(info.value)
    assert "pip install" in str(info.value)


def test_unreadable_weights_file_is_a_usage_error(tmp_path):
    bad = tmp_path / "pretrained.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(UsageError, match="cannot load GE2E weights"):
        GE2EFrontend(bad)

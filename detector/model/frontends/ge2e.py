"""`ge2e`: the frozen pretrained GE2E speaker encoder of resemblyzer 0.1.4 as a front-end.

wav (B, T) at 16 kHz -> 40-band power mel frames (25 ms window, 10 ms hop) -> 3 LSTM layers (hidden 256);
every layer's output sequence is a layer of the result: (B, 3, T', 256), T' = 1 + T // 160.

The mel reproduces `resemblyzer.audio.wav_to_mel_spectrogram` (librosa 0.11 `feature.melspectrogram`:
periodic Hann, n_fft 400, hop 160, center=True with zero padding (pad_mode "constant", the default since
librosa 0.10), |STFT|^2, Slaney-scale mel filters with Slaney area normalisation, no log). Like librosa, the STFT runs in float64 and is rounded to complex64.
resemblyzer's preprocessing is applied only in part: the volume normalisation (increase-only, per clip, to
-30 dBFS RMS) is on by default (`volume_norm=False` turns it off) because the encoder was trained on such input;
an all-zero clip stays zero (resemblyzer would give NaN). The VAD silence trimming is never applied (it changes
the length and needs webrtcvad).
The weights are read from the installed package's `pretrained.pt` without importing resemblyzer
(its `__init__` needs webrtcvad and pkg_resources), or from `weights=`; the speaker projection (`linear`) is unused.
"""
from __future__ import annotations

import functools
import importlib.util
import math
import pickle
from pathlib import Path

import numpy as np
import torch
from torch import nn

from manifests.errors import UsageError, first_line

INSTALL_HINT = 'the ge2e front-end needs the resemblyzer weights; install them with `pip install "hardspoof[ge2e]"`'
SAMPLE_RATE, N_FFT, HOP, N_MELS, HIDDEN, LAYERS = 16000, 400, 160, 40, 256, 3
TARGET_RMS = 10 ** (-30 / 20)  # resemblyzer's audio_norm_target_dBFS = -30


def weights_path() -> Path:
    """`pretrained.pt` inside the installed resemblyzer package (found without importing it)."""
    spec = importlib.util.find_spec("resemblyzer")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        if (Path(folder) / "pretrained.pt").is_file():
            return Path(folder) / "pretrained.pt"
    raise UsageError(INSTALL_HINT)


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney mel scale (librosa htk=False): linear below 1 kHz, logarithmic above."""
    return np.where(f >= 1000, 15 + np.log(np.maximum(f, 1e-10) / 1000) / (math.log(6.4) / 27), f * 3 / 200)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    return np.where(m >= 15, 1000 * np.exp(math.log(6.4) / 27 * (m - 15)), m * 200 / 3)


def mel_filterbank(sr: int = SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS) -> np.ndarray:
    """(n_mels, 1 + n_fft // 2) float32, equal to `librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels)`."""
    freqs = np.fft.rfftfreq(n_fft, 1 / sr)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(np.array(0.0)), _hz_to_mel(np.array(sr / 2)), n_mels + 2))
    ramps = mel_f[:, None] - freqs[None, :]
    lower, upper = -ramps[:-2] / np.diff(mel_f)[:-1, None], ramps[2:] / np.diff(mel_f)[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper)).astype(np.float32)
    weights *= (2.0 / (mel_f[2:] - mel_f[:-2]))[:, None]  # Slaney normalisation: constant area per band
    return weights


@functools.lru_cache(maxsize=None)
def _stft_consts() -> tuple[torch.Tensor, torch.Tensor]:
    """The mel filterbank (40, 201) float32 and the periodic Hann window (400,) float64, built once."""
    return torch.from_numpy(mel_filterbank()), torch.hann_window(N_FFT, dtype=torch.float64)


def power_mel(wav: torch.Tensor) -> torch.Tensor:
    """wav: (B, T) at 16 kHz -> (B, T', 40) float32 power mel, T' = 1 + T // 160 (resemblyzer's mel, batched)."""
    fb, window = (c.to(wav.device) for c in _stft_consts())
    spec = torch.stft(wav.double(), N_FFT, HOP, window=window, center=True, pad_mode="constant", return_complex=True)
    if torch.compiler.is_exporting():  # ONNX has no complex cast: the same power from the real and imaginary parts
        return torch.matmul(fb, torch.view_as_real(spec).float().pow(2).sum(-1)).transpose(1, 2)
    return torch.matmul(fb, spec.to(torch.complex64).abs().pow(2)).transpose(1, 2)


def normalize_volume(wav: torch.Tensor) -> torch.Tensor:
    """(B, T) -> (B, T): raise each quiet clip to -30 dBFS RMS; louder clips and all-zero clips are unchanged."""
    rms = wav.pow(2).mean(-1, keepdim=True).sqrt()
    return wav * (TARGET_RMS / rms.clamp_min(1e-12)).clamp_min(1.0)


class GE2EFrontend(nn.Module):
    """resemblyzer's GE2E LSTM stack, frozen; forward returns (B, 3, T', 256), one layer per LSTM."""

    def __init__(self, weights: str | Path | None = None, volume_norm: bool = True):
        super().__init__()
        self.lstms = nn.ModuleList(nn.LSTM(N_MELS if k == 0 else HIDDEN, HIDDEN, batch_first=True) for k in range(LAYERS))
        path = Path(weights) if weights is not None else weights_path()
        try:  # the checkpoint's tensors were saved on CUDA, hence map_location
            state = torch.load(path, map_location="cpu", weights_only=True)["model_state"]
            for k, lstm in enumerate(self.lstms):  # layer k of the 3-layer checkpoint -> the k-th single LSTM
                lstm.load_state_dict({f"{n}_l0": state[f"lstm.{n}_l{k}"]
                                      for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")})
        except (OSError, EOFError, RuntimeError, KeyError, TypeError, pickle.UnpicklingError) as e:
            raise UsageError(f"cannot load GE2E weights {path}: {first_line(e)}; {INSTALL_HINT}") from None
        self.volume_norm, self.trainable, self.pretrained = volume_norm, False, True
        self.num_layers, self.dim = LAYERS, HIDDEN
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "GE2EFrontend":
        return super().train(False)  # frozen: always in eval mode

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """wav: (B, T) float32 in [-1, 1] at 16 kHz -> (B, 3, T', 256), T' = 1 + T // 160 (10 ms frames)."""
        if wav.dim() != 2 or wav.shape[-1] == 0:
            raise ValueError(f"GE2EFrontend expects wav of shape (B, T) with T > 0, got {tuple(wav.shape)}")
        with torch.no_grad():
            wav = wav.float()
            x = power_mel(normalize_volume(wav) if self.volume_norm else wav)
            layers = []
            for lstm in self.lstms:
                x = lstm(x)[0]
                layers.append(x)
        return torch.stack(layers, dim=1)

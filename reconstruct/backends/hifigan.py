"""HiFi-GAN copy-synthesis (Kong et al. 2020) with speechbrain's pretrained vocoders.

The mel spectrogram is computed exactly as the checkpoint was trained on it (speechbrain's
`mel_spectrogram` with the recipe's STFT, mel and compression settings), then the vocoder
turns it back into a waveform. Weights: the `speechbrain/tts-hifigan-*` repos, a folder with
`hyperparams.yaml` and `generator.ckpt`, loaded with `HIFIGAN.from_hparams(source=folder)`.
HyperPyYAML instantiates the classes the yaml names: only load folders from a trusted source.
"""
from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import Any, ClassVar

import torch

from manifests.errors import UsageError

from .. import weights as W
from .base import Backend
from .registry import register


@dataclasses.dataclass(frozen=True)
class MelConfig:
    """The analysis a speechbrain vocoder checkpoint was trained on (its recipe's hparams)."""

    sample_rate: int      # Hz
    hop_length: int = 256  # samples per frame = the vocoder's total upsampling
    win_length: int = 1024
    n_fft: int = 1024
    n_mels: int = 80
    f_min: float = 0.0
    f_max: float = 8000.0
    power: float = 1.0     # magnitude, not power
    normalized: bool = False
    norm: str = "slaney"
    mel_scale: str = "slaney"
    compression: bool = True  # log(clamp(x, 1e-5)), speechbrain's dynamic_range_compression

    def __call__(self, wav: torch.Tensor) -> torch.Tensor:
        """wav: (T,) float32 -> (1, n_mels, T // hop_length + 1) log-mel."""
        from speechbrain.lobes.models.HifiGAN import mel_spectrogram

        kw = dataclasses.asdict(self)
        return mel_spectrogram(audio=wav.view(1, -1), **kw)


def load_speechbrain(interface: str, path: Path, device: torch.device) -> Any:
    """`speechbrain.inference.vocoders.<interface>.from_hparams` on a local folder."""
    vocoders = W.require("speechbrain.inference.vocoders", "speechbrain")
    if not path.is_dir() or not (path / "hyperparams.yaml").is_file():
        raise UsageError(f"{path} is not a speechbrain model folder (expected hyperparams.yaml and *.ckpt)")
    # savedir receives links to the files; the weights are in memory once from_hparams returns.
    with tempfile.TemporaryDirectory(prefix="hardspoof-sb-") as tmp:
        model = getattr(vocoders, interface).from_hparams(
            source=str(path), savedir=tmp, run_opts={"device": str(device)})
    model.eval()
    return model


_HIFIGAN_YAML = """\
# HiFi-GAN generator, as in speechbrain/tts-hifigan-* (written by hardspoof: random weights)
in_channels: {n_mels}
out_channels: 1
resblock_type: "1"
resblock_dilation_sizes: {dilations}
resblock_kernel_sizes: {kernels}
upsample_kernel_sizes: [16, 16, 4, 4]
upsample_initial_channel: {channels}
upsample_factors: [8, 8, 2, 2]
inference_padding: 5
cond_channels: 0
conv_post_bias: True

generator: !new:speechbrain.lobes.models.HifiGAN.HifiganGenerator
    in_channels: !ref <in_channels>
    out_channels: !ref <out_channels>
    resblock_type: !ref <resblock_type>
    resblock_dilation_sizes: !ref <resblock_dilation_sizes>
    resblock_kernel_sizes: !ref <resblock_kernel_sizes>
    upsample_kernel_sizes: !ref <upsample_kernel_sizes>
    upsample_initial_channel: !ref <upsample_initial_channel>
    upsample_factors: !ref <upsample_factors>
    inference_padding: !ref <inference_padding>
    cond_channels: !ref <cond_channels>
    conv_post_bias: !ref <conv_post_bias>

modules:
    generator: !ref <generator>

pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer
    loadables:
        generator: !ref <generator>
"""


def write_random_speechbrain(folder: Path, yaml_text: str, loadable: str) -> Path:
    """Write hyperparams.yaml and <loadable>.ckpt (random weights) in the hub repos' layout."""
    from hyperpyyaml import load_hyperpyyaml

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "hyperparams.yaml").write_text(yaml_text)
    torch.manual_seed(0)
    hparams = load_hyperpyyaml(yaml_text)
    torch.save(hparams[loadable].state_dict(), folder / f"{loadable}.ckpt")
    return folder


class _HifiGan(Backend):
    method = "vocoder"
    mel: ClassVar[MelConfig]

    @classmethod
    def random_weights(cls, folder: str | Path, tiny: bool = False) -> Path:
        """A random-weights vocoder folder with the published architecture (or a tiny one)."""
        size = (dict(dilations="[[1, 3, 5]]", kernels="[3]", channels=16) if tiny else
                dict(dilations="[[1, 3, 5], [1, 3, 5], [1, 3, 5]]", kernels="[3, 7, 11]", channels=512))
        return write_random_speechbrain(Path(folder), _HIFIGAN_YAML.format(n_mels=cls.mel.n_mels, **size),
                                        "generator")

    def load(self, checkpoint: Path | None) -> None:
        path = W.resolve(self.name, self.weights, checkpoint)
        self.model = load_speechbrain("HIFIGAN", path, self.device)
        factors = getattr(self.model.hparams, "upsample_factors", None)
        if factors is not None and int(torch.tensor(factors).prod()) != self.mel.hop_length:
            raise UsageError(f"{path}: generator upsamples by {factors}, but {self.name}'s mel hop is "
                             f"{self.mel.hop_length}; this is not a {self.name} checkpoint")
        self.padding = int(getattr(self.model.hparams.generator, "inference_padding", 0))
        self.checkpoint_sha256 = W.checkpoint_sha256(path)

    def min_samples(self) -> int:
        return self.mel.n_fft // 2 + 1  # reflect-padded STFT needs half a window

    def _reconstruct(self, wav: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        mel = self.mel(wav)
        out = self.model.decode_batch(mel).reshape(-1)
        start = self.padding * self.mel.hop_length  # frames replicated on each side by inference()
        return out[start:start + wav.shape[0]]


@register
class HifiGanLibriTTS16k(_HifiGan):
    name = "hifigan-libritts-16k"
    sample_rate = 16000
    weights = "speechbrain/tts-hifigan-libritts-16kHz"
    mel = MelConfig(sample_rate=16000)
    description = "HiFi-GAN vocoder copy-synthesis, LibriTTS multi-speaker 16 kHz (speechbrain)"


@register
class HifiGanLJSpeech22k(_HifiGan):
    name = "hifigan-ljspeech-22k"
    sample_rate = 22050
    weights = "speechbrain/tts-hifigan-ljspeech"
    mel = MelConfig(sample_rate=22050)
    description = "HiFi-GAN vocoder copy-synthesis, LJSpeech single speaker 22.05 kHz (speechbrain)"

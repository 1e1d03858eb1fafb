"""DiffWave copy-synthesis (Kong et al. 2021) with speechbrain's pretrained LJSpeech model.

The mel is computed as the checkpoint expects (the same analysis as speechbrain's LJSpeech
HiFi-GAN), then the waveform is sampled by the reverse diffusion conditioned on it, with the
paper's fast-sampling noise schedule. Sampling uses torch's global RNG inside speechbrain, so
it runs inside `torch.random.fork_rng` seeded from the clip's seed: deterministic, and the
caller's RNG state is left untouched. Weights: `speechbrain/tts-diffwave-ljspeech`
(`hyperparams.yaml` + `diffwave.ckpt`), loaded with `DiffWaveVocoder.from_hparams`.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import torch

from .. import weights as W
from .base import Backend
from .hifigan import MelConfig, load_speechbrain, write_random_speechbrain
from .registry import register

FAST_SCHEDULE = (0.0001, 0.001, 0.01, 0.05, 0.2, 0.5)  # DiffWave paper, 6 steps (speechbrain model card)


def fast_schedule(steps: int) -> list[float]:
    """`steps` noise levels from 1e-4 up, ending where the published 6-step schedule ends.

    The published schedule for 6; otherwise geometric, with the last level found by bisection
    so that the total signal kept (prod(1 - beta)) equals the published schedule's. This keeps
    every level inside the range of the 50-step training schedule, as speechbrain requires.
    """
    if steps == len(FAST_SCHEDULE):
        return list(FAST_SCHEDULE)
    target = float(np.prod(1 - np.array(FAST_SCHEDULE)))
    lo, hi = 1e-4, 0.999
    for _ in range(60):
        mid = (lo + hi) / 2
        kept = np.prod(1 - np.geomspace(1e-4, mid, steps))
        lo, hi = (mid, hi) if kept > target else (lo, mid)
    return [float(b) for b in np.geomspace(1e-4, lo, steps)]


@dataclasses.dataclass(frozen=True)
class DiffWaveParams:
    steps: int = 6  # reverse diffusion steps: 2..49 fast schedule (6 = the paper's), 50 = full schedule

    def check(self) -> None:
        if not 2 <= self.steps <= 50:
            raise ValueError(f"steps must be in [2, 50], got {self.steps}")


_DIFFWAVE_YAML = """\
# DiffWave vocoder, as in speechbrain/tts-diffwave-ljspeech (written by hardspoof: random weights)
input_channels: 80
residual_layers: {layers}
residual_channels: {channels}
dilation_cycle_length: {cycle}
total_steps: 50
beta_start: 0.0001
beta_end: 0.05

diffwave: !new:speechbrain.lobes.models.DiffWave.DiffWave
    input_channels: !ref <input_channels>
    residual_layers: !ref <residual_layers>
    residual_channels: !ref <residual_channels>
    dilation_cycle_length: !ref <dilation_cycle_length>
    total_steps: !ref <total_steps>
    unconditional: False

noise: !new:speechbrain.nnet.diffusion.GaussianNoise

diffusion: !new:speechbrain.lobes.models.DiffWave.DiffWaveDiffusion
    model: !ref <diffwave>
    beta_start: !ref <beta_start>
    beta_end: !ref <beta_end>
    timesteps: !ref <total_steps>
    noise: !ref <noise>

modules:
    diffwave: !ref <diffwave>
    diffusion: !ref <diffusion>

pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer
    loadables:
        diffwave: !ref <diffwave>
"""


@register
class DiffWaveLJSpeech(Backend):
    name = "diffwave-ljspeech"
    method = "diffusion"
    sample_rate = 22050
    Params = DiffWaveParams
    weights = "speechbrain/tts-diffwave-ljspeech"
    mel = MelConfig(sample_rate=22050)
    description = "DiffWave mel-conditioned diffusion vocoder, LJSpeech 22.05 kHz (speechbrain); steps 2-50"

    @classmethod
    def random_weights(cls, folder: str | Path, tiny: bool = False) -> Path:
        """A random-weights model folder with the published architecture (or a tiny one)."""
        size = dict(layers=2, channels=8, cycle=1) if tiny else dict(layers=30, channels=64, cycle=10)
        return write_random_speechbrain(Path(folder), _DIFFWAVE_YAML.format(**size), "diffwave")

    def load(self, checkpoint: Path | None) -> None:
        path = W.resolve(self.name, self.weights, checkpoint)
        self.model = load_speechbrain("DiffWaveVocoder", path, self.device)
        self.schedule = None if self.params.steps == 50 else fast_schedule(self.params.steps)
        self.checkpoint_sha256 = W.checkpoint_sha256(path)

    def params_json(self) -> str:
        p = dataclasses.asdict(self.params)
        p.update(noise_schedule=[round(b, 6) for b in self.schedule] if self.schedule else "training")
        return json.dumps(p, sort_keys=True)

    def min_samples(self) -> int:
        return self.mel.n_fft // 2 + 1  # reflect-padded STFT needs half a window

    def _reconstruct(self, wav: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        mel = self.mel(wav)
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(generator.initial_seed())
            out = self.model.decode_batch(mel, hop_len=self.mel.hop_length, fast_sampling=self.schedule is not None,
                                          fast_sampling_noise_schedule=self.schedule)
        return out.reshape(-1)[:wav.shape[0]]

"""Descript Audio Codec (Kumar et al. 2023) through transformers' `DacModel`.

Weights: the `descript/dac_*` Hugging Face repos (config.json + model.safetensors), loaded
with `DacModel.from_pretrained(folder)`. The number of residual codebooks used sets the bitrate.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from manifests.errors import UsageError

from .. import weights as W
from .base import Backend
from .registry import register


@dataclasses.dataclass(frozen=True)
class DacParams:
    n_quantizers: int = 0  # residual codebooks used (bitrate); 0 = all of the model's

    def check(self) -> None:
        if self.n_quantizers < 0:
            raise ValueError(f"n_quantizers must be >= 0 (0 = all), got {self.n_quantizers}")


class _Dac(Backend):
    method = "codec"
    Params = DacParams
    allow_patterns: ClassVar[list[str]] = ["config.json", "preprocessor_config.json", "*.safetensors"]
    config: ClassVar[dict[str, Any]]  # published architecture, used only for random-weight models

    @classmethod
    def random_weights(cls, folder: str | Path, tiny: bool = False) -> Path:
        """save_pretrained a random-weights DacModel (published config, or a tiny one) into folder."""
        transformers = W.require("transformers", "transformers")
        cfg = dict(cls.config, sampling_rate=cls.sample_rate)
        if tiny:
            cfg.update(encoder_hidden_size=4, decoder_hidden_size=16, n_codebooks=3, codebook_size=16,
                       codebook_dim=4)
        torch.manual_seed(0)
        transformers.DacModel(transformers.DacConfig(**cfg)).save_pretrained(folder)
        return Path(folder)

    def load(self, checkpoint: Path | None) -> None:
        transformers = W.require("transformers", "transformers")
        path = W.resolve(self.name, self.weights, checkpoint, self.allow_patterns)
        model = transformers.DacModel.from_pretrained(str(path))
        cfg = model.config
        if cfg.sampling_rate != self.sample_rate:
            raise UsageError(f"{path} holds a {cfg.sampling_rate} Hz DAC model, {self.name} needs {self.sample_rate} Hz")
        if self.params.n_quantizers > cfg.n_codebooks:
            raise UsageError(f"{self.name}: n_quantizers={self.params.n_quantizers} but the model has "
                             f"{cfg.n_codebooks} codebooks (use 1..{cfg.n_codebooks}, or 0 for all)")
        self.model = model.eval().to(self.device)
        self.hop = int(cfg.hop_length)
        self.n_q = self.params.n_quantizers or int(cfg.n_codebooks)
        self.checkpoint_sha256 = W.checkpoint_sha256(path)

    def params_json(self) -> str:
        p = dataclasses.asdict(self.params)
        p.update(n_quantizers_used=self.n_q, kbps=round(self.n_q * 10 * self.sample_rate / self.hop / 1000, 2))
        return json.dumps(p, sort_keys=True)

    def min_samples(self) -> int:
        return self.hop  # one code frame

    def _reconstruct(self, wav: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n = wav.shape[0]
        x = F.pad(wav, (0, -n % self.hop)).view(1, 1, -1)  # whole frames, as descript's own encode does
        out = self.model(x, n_quantizers=self.n_q).audio_values
        return out.reshape(-1)[:n]


@register
class Dac16(_Dac):
    name = "dac-16khz"
    sample_rate = 16000
    weights = "descript/dac_16khz"
    config = {"downsampling_ratios": [2, 4, 5, 8], "n_codebooks": 12}
    description = "Descript Audio Codec 16 kHz (transformers DacModel); n_quantizers 1-12"


@register
class Dac24(_Dac):
    name = "dac-24khz"
    sample_rate = 24000
    weights = "descript/dac_24khz"
    config = {"downsampling_ratios": [2, 4, 5, 8], "n_codebooks": 32}
    description = "Descript Audio Codec 24 kHz (transformers DacModel); n_quantizers 1-32"


@register
class Dac44(_Dac):
    name = "dac-44khz"
    sample_rate = 44100
    weights = "descript/dac_44khz"
    config = {"downsampling_ratios": [2, 4, 8, 8], "n_codebooks": 9}
    description = "Descript Audio Codec 44.1 kHz (transformers DacModel); n_quantizers 1-9"

"""Mimi neural codec (Kyutai, the Moshi tokenizer) through transformers' `MimiModel`.

Weights: the `kyutai/mimi` Hugging Face repo (config.json + model.safetensors), loaded with
`MimiModel.from_pretrained(folder, local_files_only=True)`. 24 kHz, 12.5 code frames per second;
the first codebook is distilled from WavLM (semantic), the others are acoustic residuals.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import ClassVar

import torch

from manifests.errors import UsageError

from .. import weights as W
from .base import Backend
from .registry import register


@dataclasses.dataclass(frozen=True)
class MimiParams:
    n_quantizers: int = 8  # codebooks used (bitrate: 1.1 kbps at 8, as Moshi uses it); 1..32

    def check(self) -> None:
        if self.n_quantizers < 1:
            raise ValueError(f"n_quantizers must be >= 1, got {self.n_quantizers}")


@register
class Mimi(Backend):
    name = "mimi"
    method = "codec"
    sample_rate = 24000
    Params = MimiParams
    weights = "kyutai/mimi"
    allow_patterns: ClassVar[list[str]] = ["config.json", "preprocessor_config.json", "*.safetensors"]
    description = "Mimi 24 kHz, 12.5 Hz frames, semantic + acoustic RVQ (Kyutai, transformers MimiModel); n_quantizers 1-32"

    @classmethod
    def random_weights(cls, folder: str | Path, tiny: bool = False) -> Path:
        """save_pretrained a random-weights MimiModel: transformers' default config (= kyutai/mimi), or tiny."""
        transformers = W.require("transformers", "transformers")
        cfg = {}
        if tiny:
            cfg = dict(hidden_size=16, num_filters=4, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2,
                       head_dim=8, intermediate_size=32, codebook_size=16, codebook_dim=8,
                       vector_quantization_hidden_dimension=8, num_quantizers=8, upsample_groups=16)
        torch.manual_seed(0)
        transformers.MimiModel(transformers.MimiConfig(**cfg)).save_pretrained(folder)
        return Path(folder)

    def load(self, checkpoint: Path | None) -> None:
        transformers = W.require("transformers", "transformers")
        path = W.resolve(self.name, self.weights, checkpoint, self.allow_patterns)
        if not (path / "config.json").is_file():
            raise UsageError(f"{path} is not a Mimi model folder (expected config.json and model.safetensors)")
        model = transformers.MimiModel.from_pretrained(str(path), local_files_only=True)
        cfg = model.config
        if cfg.model_type != "mimi" or cfg.sampling_rate != self.sample_rate:
            raise UsageError(f"{path} holds a {cfg.model_type} model at {cfg.sampling_rate} Hz; "
                             f"{self.name} needs a 24000 Hz Mimi model")
        if self.params.n_quantizers > cfg.num_quantizers:
            raise UsageError(f"{self.name}: n_quantizers={self.params.n_quantizers} but the model has "
                             f"{cfg.num_quantizers} codebooks (use 1..{cfg.num_quantizers})")
        self.model = model.eval().to(self.device)
        self.hop = int(round(cfg.sampling_rate / cfg.frame_rate))
        self.checkpoint_sha256 = W.checkpoint_sha256(path)

    def params_json(self) -> str:
        p = dataclasses.asdict(self.params)
        bits = torch.tensor(float(self.model.config.codebook_size)).log2().item()
        p.update(kbps=round(self.params.n_quantizers * bits * self.model.config.frame_rate / 1000, 3))
        return json.dumps(p, sort_keys=True)

    def min_samples(self) -> int:
        return self.hop  # one code frame

    def raw(self, wav: torch.Tensor) -> torch.Tensor:
        """The library's own call on one clip at 24 kHz, nothing else (benchmarks compare against this)."""
        return self.model(wav.view(1, 1, -1), num_quantizers=self.params.n_quantizers).audio_values

    def _reconstruct(self, wav: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return self.raw(wav).reshape(-1)[:wav.shape[0]]  # codes are deterministic: no RNG involved

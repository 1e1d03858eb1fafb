"""SNAC, the Multi-Scale Neural Audio Codec (Siuzdak et al. 2024), through the `snac` package.

Three RVQ levels at 12, 23 and 47 Hz (0.98 kbps), trained on speech at 24 kHz. The decoder adds
noise (its `NoiseBlock`s), drawn here from the clip's seed. Weights: the
`hubertsiuzdak/snac_24khz` repo, `config.json` + `pytorch_model.bin`, loaded as
`SNAC.from_pretrained` does for a local folder (`from_config`, then the state dict) with
`torch.load(weights_only=True)`.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

import torch

from manifests.errors import UsageError

from .. import weights as W
from .base import Backend
from .registry import register

_SNAC_24K = {  # hubertsiuzdak/snac_24khz config.json
    "sampling_rate": 24000, "encoder_dim": 48, "encoder_rates": [2, 4, 8, 8], "decoder_dim": 1024,
    "decoder_rates": [8, 8, 4, 2], "attn_window_size": None, "codebook_size": 4096, "codebook_dim": 8,
    "vq_strides": [4, 2, 1], "noise": True, "depthwise": True,
}
_TINY = {"encoder_dim": 4, "decoder_dim": 16, "codebook_size": 16, "codebook_dim": 4}


@register
class Snac24(Backend):
    name = "snac-24khz"
    method = "codec"
    sample_rate = 24000
    weights = "hubertsiuzdak/snac_24khz"
    allow_patterns: ClassVar[list[str]] = ["config.json", "pytorch_model.bin"]
    description = "SNAC 24 kHz speech codec, 3 RVQ levels at 12/23/47 Hz, 0.98 kbps (snac package)"

    @classmethod
    def random_weights(cls, folder: str | Path, tiny: bool = False) -> Path:
        """config.json + pytorch_model.bin with random weights: the published configuration, or a tiny one."""
        snac = W.require("snac", "snac")
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        config = dict(_SNAC_24K, **(_TINY if tiny else {}))
        (folder / "config.json").write_text(json.dumps(config, indent=2))
        torch.manual_seed(0)
        torch.save(snac.SNAC(**config).state_dict(), folder / "pytorch_model.bin")
        return folder

    def load(self, checkpoint: Path | None) -> None:
        snac = W.require("snac", "snac")
        path = W.resolve(self.name, self.weights, checkpoint, self.allow_patterns)
        files = [path / "config.json", path / "pytorch_model.bin"]
        missing = [f.name for f in files if not f.is_file()]
        if missing:
            raise UsageError(f"{path} is not a SNAC model folder: missing {', '.join(missing)}")
        model = snac.SNAC.from_config(str(files[0]))
        if model.sampling_rate != self.sample_rate:
            raise UsageError(f"{files[0]}: a {model.sampling_rate} Hz SNAC; {self.name} needs {self.sample_rate} Hz")
        try:
            model.load_state_dict(torch.load(files[1], map_location="cpu", weights_only=True))
        except RuntimeError as e:
            raise UsageError(f"{files[1]} does not fit {files[0]}: {str(e).splitlines()[0]}") from None
        self.model = model.eval().to(self.device)
        self.checkpoint_sha256 = W.checkpoint_sha256(path)

    def min_samples(self) -> int:
        return int(self.model.hop_length)  # one code frame of the finest level

    def raw(self, wav: torch.Tensor) -> torch.Tensor:
        """The library's own call on one clip at 24 kHz, nothing else (benchmarks compare against this)."""
        return self.model(wav.view(1, 1, -1))[0]

    def _reconstruct(self, wav: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):  # the decoder's noise blocks draw from the global RNG
            torch.manual_seed(generator.initial_seed())
            return self.raw(wav).reshape(-1)  # SNAC pads to whole frames and trims back itself

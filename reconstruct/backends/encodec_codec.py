"""EnCodec neural codec (Défossez et al. 2022) through the `encodec` package.

Weights are the official state-dict files the package itself downloads
(`encodec_24khz-d7cc33bc.th`, `encodec_48khz-7e698e3e.th`), loaded with
`torch.load(weights_only=True)` into the package's own model class. The 48 kHz model is
stereo: mono input is duplicated on both channels and the two outputs averaged.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import ClassVar

import torch

from .. import weights as W
from .base import Backend
from .registry import register

_ROOT_URL = "https://dl.fbaipublicfiles.com/encodec/v0/"  # = encodec.model.ROOT_URL


@dataclasses.dataclass(frozen=True)
class EncodecParams:
    bandwidth_kbps: float = 6.0  # target bandwidth; 24 kHz: 1.5, 3, 6, 12, 24; 48 kHz: 3, 6, 12, 24

    def check(self) -> None:
        if self.bandwidth_kbps not in (1.5, 3.0, 6.0, 12.0, 24.0):
            raise ValueError(f"bandwidth_kbps must be one of 1.5, 3, 6, 12, 24, got {self.bandwidth_kbps}")


class _Encodec(Backend):
    method = "codec"
    Params = EncodecParams
    file_name: ClassVar[str]        # official checkpoint file name, <stem>-<sha256 prefix>.th
    bandwidths: ClassVar[tuple[float, ...]]

    @classmethod
    def _build(cls):
        """The package's model class with the official architecture and random weights."""
        encodec = W.require("encodec", "encodec")
        factory = getattr(encodec.EncodecModel, cls.file_name.split("-")[0].replace("encodec_", "encodec_model_"))
        return factory(pretrained=False)

    @classmethod
    def random_weights(cls, folder: str | Path, tiny: bool = False) -> Path:
        """Write a random-weights state dict in the official format (the architecture is fixed, so
        `tiny` changes nothing). For tests and speed benchmarks only."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        out = folder / (cls.file_name.split("-")[0] + ".th")  # no hash suffix: not the official file
        torch.save(cls._build().state_dict(), out)
        return out

    def load(self, checkpoint: Path | None) -> None:
        bw = self.params.bandwidth_kbps
        if bw not in self.bandwidths:
            from manifests.errors import UsageError

            raise UsageError(f"{self.name}: bandwidth_kbps={bw} not offered; choose one of "
                             f"{', '.join(f'{b:g}' for b in self.bandwidths)}")
        path = W.resolve(self.name, self.weights, checkpoint)
        file = _state_file(path, self.file_name)
        model = self._build()
        state = torch.load(file, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
        model.set_target_bandwidth(bw)
        self.model = model.eval().to(self.device)
        self.checkpoint_sha256 = W.checkpoint_sha256(file)
        self.hop = int(model.encoder.hop_length)

    @classmethod
    def weights_sha256(cls, path: Path, params) -> str:
        return W.checkpoint_sha256(_state_file(path, cls.file_name))

    def params_json(self) -> str:
        p = dataclasses.asdict(self.params)
        p.update(channels=self.model.channels)
        return json.dumps(p, sort_keys=True)

    def min_samples(self) -> int:
        return self.hop  # one code frame

    def _reconstruct(self, wav: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        x = wav.view(1, 1, -1).expand(1, self.model.channels, -1).contiguous()
        return self.model(x)[0].mean(0)  # codes are deterministic: no RNG involved


def _state_file(path: Path, official: str) -> Path:
    """The state-dict file: `path` itself, or the single *.th in the folder (official name preferred).

    An official file name carries a sha256 prefix; it is checked, as the encodec package does.
    """
    from manifests.errors import UsageError

    if path.is_file():
        file = path
    else:
        files = sorted(path.glob("*.th"))
        named = [f for f in files if f.name == official]
        if not named and len(files) != 1:
            raise UsageError(f"expected {official} (or exactly one *.th state dict) in {path}, "
                             f"found {[f.name for f in files] or 'none'}")
        file = (named or files)[0]
    if file.name == official:
        prefix = official.rsplit("-", 1)[1].split(".")[0]
        if not W.checkpoint_sha256(file).startswith(prefix):
            raise UsageError(f"{file} is corrupt: its sha256 does not start with {prefix}; pull it again")
    return file


@register
class Encodec24(_Encodec):
    name = "encodec-24khz"
    sample_rate = 24000
    file_name = "encodec_24khz-d7cc33bc.th"
    bandwidths = (1.5, 3.0, 6.0, 12.0, 24.0)
    weights = _ROOT_URL + file_name
    description = "EnCodec 24 kHz mono, causal (Meta); bandwidth_kbps 1.5-24"


@register
class Encodec48(_Encodec):
    name = "encodec-48khz"
    sample_rate = 48000
    file_name = "encodec_48khz-7e698e3e.th"
    bandwidths = (3.0, 6.0, 12.0, 24.0)
    weights = _ROOT_URL + file_name
    description = "EnCodec 48 kHz stereo (mono duplicated), non-causal (Meta); bandwidth_kbps 3-24"

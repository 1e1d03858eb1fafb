"""Vocos (Siuzdak 2023), a Fourier-head GAN vocoder, through the `vocos` package.

Two published models: `vocos-mel-24khz` (copy-synthesis from a 100-bin mel: a vocoder) and
`vocos-encodec-24khz` (EnCodec 24 kHz tokens at a bandwidth, decoded by Vocos: a codec).
Weights: the `charactr/vocos-*` repos, `config.yaml` + `pytorch_model.bin`, loaded as
`Vocos.from_pretrained` does (`from_hparams`, then the state dict with `weights_only=True`). The
yaml names classes by import path; only `vocos.*` classes are accepted. The EnCodec model inside
`vocos-encodec-24khz` is not in that repo: `from_pretrained` downloads it through the `encodec`
package, so here it comes from a `*.th` in the same folder or from the `encodec-24khz` store entry.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
from pathlib import Path
from typing import ClassVar

import torch

from manifests.errors import UsageError

from .. import weights as W
from .base import Backend
from .registry import register

_MEL = {  # charactr/vocos-mel-24khz config.yaml
    "feature_extractor": {"class_path": "vocos.feature_extractors.MelSpectrogramFeatures",
                          "init_args": {"sample_rate": 24000, "n_fft": 1024, "hop_length": 256, "n_mels": 100,
                                        "padding": "center"}},
    "backbone": {"class_path": "vocos.models.VocosBackbone",
                 "init_args": {"input_channels": 100, "dim": 512, "intermediate_dim": 1536, "num_layers": 8}},
    "head": {"class_path": "vocos.heads.ISTFTHead",
             "init_args": {"dim": 512, "n_fft": 1024, "hop_length": 256, "padding": "center"}},
}
_ENCODEC = {  # charactr/vocos-encodec-24khz config.yaml
    "feature_extractor": {"class_path": "vocos.feature_extractors.EncodecFeatures",
                          "init_args": {"encodec_model": "encodec_24khz", "bandwidths": [1.5, 3.0, 6.0, 12.0],
                                        "train_codebooks": False}},
    "backbone": {"class_path": "vocos.models.VocosBackbone",
                 "init_args": {"input_channels": 128, "dim": 384, "intermediate_dim": 1152, "num_layers": 8,
                               "adanorm_num_embeddings": 4}},
    "head": {"class_path": "vocos.heads.ISTFTHead",
             "init_args": {"dim": 384, "n_fft": 1280, "hop_length": 320, "padding": "same"}},
}
_TINY_BACKBONE = {"dim": 16, "intermediate_dim": 32, "num_layers": 1}


@contextlib.contextmanager
def _encodec_without_download():
    """`EncodecFeatures` asks the encodec package for pretrained=True (a download); build it empty instead."""
    import encodec

    original = encodec.EncodecModel.encodec_model_24khz

    def empty(pretrained: bool = True, repository: Path | None = None):
        return original(pretrained=False)

    encodec.EncodecModel.encodec_model_24khz = staticmethod(empty)
    try:
        yield
    finally:
        encodec.EncodecModel.encodec_model_24khz = staticmethod(original)


def _build(config_path: Path):
    """`Vocos.from_hparams` on a config whose classes are all vocos' own (checked first)."""
    import yaml

    vocos = W.require("vocos", "vocos")
    config = yaml.safe_load(config_path.read_text())
    parts = ("feature_extractor", "backbone", "head")
    if not isinstance(config, dict) or any(not isinstance(config.get(p), dict) for p in parts):
        raise UsageError(f"{config_path} is not a Vocos config (expected feature_extractor, backbone, head)")
    for part in parts:
        cls = str(config[part].get("class_path", ""))
        if not cls.startswith(("vocos.feature_extractors.", "vocos.models.", "vocos.heads.")):
            raise UsageError(f"{config_path}: {part} class {cls!r} is not one of vocos' own; refusing to import it")
    with _encodec_without_download():
        return vocos.Vocos.from_hparams(str(config_path))


class _Vocos(Backend):
    sample_rate = 24000
    allow_patterns: ClassVar[list[str]] = ["config.yaml", "pytorch_model.bin"]
    config: ClassVar[dict]

    @classmethod
    def random_weights(cls, folder: str | Path, tiny: bool = False) -> Path:
        """config.yaml + pytorch_model.bin with random weights: the published architecture, or a tiny backbone."""
        import yaml

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        config = json.loads(json.dumps(cls.config))
        if tiny:
            config["backbone"]["init_args"].update(_TINY_BACKBONE)
            config["head"]["init_args"]["dim"] = _TINY_BACKBONE["dim"]
        (folder / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        torch.manual_seed(0)
        model = _build(folder / "config.yaml")
        state = {k: v for k, v in model.state_dict().items() if not k.startswith("feature_extractor.encodec.")}
        torch.save(state, folder / "pytorch_model.bin")
        if hasattr(model.feature_extractor, "encodec"):  # the EnCodec weights, in the encodec package's format
            torch.save(model.feature_extractor.encodec.state_dict(), folder / "encodec_24khz.th")
        return folder

    def load(self, checkpoint: Path | None) -> None:
        path = W.resolve(self.name, self.weights, checkpoint, self.allow_patterns)
        files = [path / "config.yaml", path / "pytorch_model.bin"]
        missing = [f.name for f in files if not f.is_file()]
        if missing:
            raise UsageError(f"{path} is not a Vocos model folder: missing {', '.join(missing)}")
        model = _build(files[0])
        state = torch.load(files[1], map_location="cpu", weights_only=True)
        self.checkpoint_sha256 = W.checkpoint_sha256(path)
        extractor = model.feature_extractor
        if hasattr(extractor, "encodec"):  # as Vocos.from_pretrained: EnCodec's own weights complete the state
            file = self._encodec_file(path)
            extractor.encodec.load_state_dict(torch.load(file, map_location="cpu", weights_only=True))
            if not file.is_relative_to(path):  # from the encodec-24khz store entry: both files name the weights
                self.checkpoint_sha256 = hashlib.sha256(
                    (self.checkpoint_sha256 + W.checkpoint_sha256(file)).encode()).hexdigest()
            state.update({"feature_extractor.encodec." + k: v for k, v in extractor.encodec.state_dict().items()})
        try:
            model.load_state_dict(state)
        except RuntimeError as e:
            raise UsageError(f"{files[1]} does not fit {files[0]}: {str(e).splitlines()[0]}") from None
        self.model = model.eval().to(self.device)
        self.check_model()

    @staticmethod
    def _encodec_file(path: Path) -> Path:
        """EnCodec 24 kHz state dict: a *.th beside the Vocos files, else the encodec-24khz weights."""
        from .encodec_codec import Encodec24, _state_file

        source = path if any(path.glob("*.th")) else W.resolve(Encodec24.name, Encodec24.weights)
        return _state_file(source, Encodec24.file_name)

    def check_model(self) -> None:
        """The loaded model is this back-end's kind (mel or EnCodec features)."""


@dataclasses.dataclass(frozen=True)
class VocosEncodecParams:
    bandwidth_kbps: float = 6.0  # EnCodec bandwidth the tokens are taken at: 1.5, 3, 6 or 12

    def check(self) -> None:
        if self.bandwidth_kbps not in (1.5, 3.0, 6.0, 12.0):
            raise ValueError(f"bandwidth_kbps must be one of 1.5, 3, 6, 12, got {self.bandwidth_kbps}")


@register
class VocosMel24(_Vocos):
    name = "vocos-mel-24khz"
    method = "vocoder"
    weights = "charactr/vocos-mel-24khz"
    config = _MEL
    description = "Vocos copy-synthesis from a 100-bin mel, 24 kHz (vocos package)"

    def check_model(self) -> None:
        if type(self.model.feature_extractor).__name__ != "MelSpectrogramFeatures":
            raise UsageError(f"{self.name}: the folder holds a {type(self.model.feature_extractor).__name__} Vocos, "
                             "not a mel one (use vocos-encodec-24khz for it)")

    def min_samples(self) -> int:
        return self.model.feature_extractor.mel_spec.n_fft // 2 + 1  # centred STFT: reflect-pads half a window

    def raw(self, wav: torch.Tensor) -> torch.Tensor:
        """The library's own call on one clip at 24 kHz, nothing else (benchmarks compare against this)."""
        return self.model(wav.view(1, -1))

    def _reconstruct(self, wav: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return self.raw(wav).reshape(-1)


@register
class VocosEncodec24(_Vocos):
    name = "vocos-encodec-24khz"

    @classmethod
    def weights_sha256(cls, path, params) -> None:
        return None  # its EnCodec half may come from another store entry: known once loaded
    method = "codec"
    Params = VocosEncodecParams
    weights = "charactr/vocos-encodec-24khz"
    config = _ENCODEC
    description = "EnCodec 24 kHz tokens decoded by Vocos (vocos package); bandwidth_kbps 1.5-12"
    also_pull: ClassVar[tuple[str, ...]] = ("encodec-24khz",)  # its EnCodec weights are not in the Vocos repo

    @classmethod
    def weights_location(cls, checkpoint: str | Path | None = None) -> str | None:
        """As the base, but the EnCodec weights must be here too (beside the Vocos files, or staged)."""
        from .encodec_codec import Encodec24

        where = super().weights_location(checkpoint)
        if where in ("checkpoint", "store") and not any(W.local_path(cls.name, checkpoint).glob("*.th")):
            return where if Encodec24.weights_location() is not None else None
        return where

    def check_model(self) -> None:
        extractor = self.model.feature_extractor
        if not hasattr(extractor, "bandwidths"):
            raise UsageError(f"{self.name}: the folder holds a {type(extractor).__name__} Vocos, not an EnCodec one")
        if self.params.bandwidth_kbps not in extractor.bandwidths:
            raise UsageError(f"{self.name}: bandwidth_kbps={self.params.bandwidth_kbps:g} not offered; choose one of "
                             f"{', '.join(f'{b:g}' for b in extractor.bandwidths)}")
        self.bandwidth_id = torch.tensor([list(extractor.bandwidths).index(self.params.bandwidth_kbps)],
                                         device=self.device)

    def min_samples(self) -> int:
        return int(self.model.feature_extractor.encodec.encoder.hop_length)  # one EnCodec frame

    def raw(self, wav: torch.Tensor) -> torch.Tensor:
        """The library's own call on one clip at 24 kHz, nothing else (benchmarks compare against this)."""
        return self.model(wav.view(1, -1), bandwidth_id=self.bandwidth_id)

    def _reconstruct(self, wav: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return self.raw(wav).reshape(-1)

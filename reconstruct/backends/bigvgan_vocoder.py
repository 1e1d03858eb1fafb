"""BigVGAN-v2 copy-synthesis (Lee et al. 2023, NVIDIA) through the `bigvgan` package.

The mel is the package's own `get_mel_spectrogram` with the checkpoint's hyper-parameters, then
the generator turns it back into a waveform. Weights: the `nvidia/bigvgan_v2_*` repos,
`config.json` + `bigvgan_generator.pt` ({"generator": state dict}), loaded as
`BigVGAN.from_pretrained` does for a local folder, with `torch.load(weights_only=True)`; weight
norm is removed for inference, as NVIDIA's examples do. Anti-aliased activations run in PyTorch
(the package's optional CUDA kernel is not compiled).
"""
from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import ClassVar

import torch

from manifests.errors import UsageError

from .. import weights as W
from .base import Backend
from .registry import register

_V2_22K = {  # nvidia/bigvgan_v2_22khz_80band_256x config.json (architecture and mel fields)
    "resblock": "1", "upsample_rates": [4, 4, 2, 2, 2, 2], "upsample_kernel_sizes": [8, 8, 4, 4, 4, 4],
    "upsample_initial_channel": 1536, "resblock_kernel_sizes": [3, 7, 11],
    "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]], "activation": "snakebeta", "snake_logscale": True,
    "use_tanh_at_final": False, "use_bias_at_final": False,
    "num_mels": 80, "n_fft": 1024, "hop_size": 256, "win_size": 1024, "sampling_rate": 22050, "fmin": 0, "fmax": None,
}
_TINY = {"upsample_initial_channel": 64, "resblock_kernel_sizes": [3], "resblock_dilation_sizes": [[1, 3, 5]]}


def _package():
    return W.require("bigvgan.bigvgan", "bigvgan")


@register
class BigVGANv2_22k(Backend):
    name = "bigvgan-v2-22khz"
    method = "vocoder"
    sample_rate = 22050
    weights = "nvidia/bigvgan_v2_22khz_80band_256x"
    allow_patterns: ClassVar[list[str]] = ["config.json", "bigvgan_generator.pt"]
    description = "BigVGAN-v2 vocoder copy-synthesis, 80-band mel, 22.05 kHz (NVIDIA, bigvgan package)"
    config: ClassVar[dict] = _V2_22K

    @classmethod
    def random_weights(cls, folder: str | Path, tiny: bool = False) -> Path:
        """config.json + bigvgan_generator.pt (random weights) as `BigVGAN.save_pretrained` writes them."""
        bigvgan = _package()
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        h = dict(cls.config, **(_TINY if tiny else {}))
        torch.manual_seed(0)
        model = bigvgan.BigVGAN(bigvgan.AttrDict(h))
        torch.save({"generator": model.state_dict()}, folder / "bigvgan_generator.pt")
        (folder / "config.json").write_text(json.dumps(h, indent=4))
        return folder

    def load(self, checkpoint: Path | None) -> None:
        bigvgan = _package()
        path = W.resolve(self.name, self.weights, checkpoint, self.allow_patterns)
        files = [path / "config.json", path / "bigvgan_generator.pt"]
        missing = [f.name for f in files if not f.is_file()]
        if missing:
            raise UsageError(f"{path} is not a BigVGAN model folder: missing {', '.join(missing)}")
        h = bigvgan.load_hparams_from_json(str(files[0]))
        if h.get("sampling_rate") != self.sample_rate:
            raise UsageError(f"{files[0]}: a {h.get('sampling_rate')} Hz BigVGAN; {self.name} needs {self.sample_rate} Hz")
        model = bigvgan.BigVGAN(h, use_cuda_kernel=False)
        state = torch.load(files[1], map_location="cpu", weights_only=True)
        if not isinstance(state, dict) or "generator" not in state:
            raise UsageError(f"{files[1]} is not a BigVGAN generator checkpoint (no 'generator' state dict)")
        with contextlib.redirect_stdout(io.StringIO()):  # "Removing weight norm..."
            try:
                model.load_state_dict(state["generator"])
            except RuntimeError:  # checkpoints saved without weight norm, as from_pretrained allows
                model.remove_weight_norm()
                model.load_state_dict(state["generator"])
            else:
                model.remove_weight_norm()
        self.h, self.model = h, model.eval().to(self.device)
        self.checkpoint_sha256 = W.checkpoint_sha256(path)

    def min_samples(self) -> int:
        return (self.h.n_fft - self.h.hop_size) // 2 + 1  # the mel's reflect padding

    def mel(self, wav: torch.Tensor) -> torch.Tensor:
        """wav: (T,) -> (1, num_mels, frames) log-mel, the package's own analysis for this checkpoint."""
        from bigvgan.meldataset import get_mel_spectrogram

        return get_mel_spectrogram(wav.view(1, -1), self.h)

    def raw(self, wav: torch.Tensor) -> torch.Tensor:
        """The library's own calls on one clip at 22.05 kHz, nothing else (benchmarks compare against this)."""
        return self.model(self.mel(wav))

    def _reconstruct(self, wav: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return self.raw(wav).reshape(-1)

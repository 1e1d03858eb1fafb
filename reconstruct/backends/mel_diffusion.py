"""mel-diffusion: SDEdit-style reconstruction with a small CPU-trained diffusion model over log-mel.

The clip's standardised log-mel is noised to `strength` (the start timestep as in diffusers'
img2img), denoised back with DDIM (eta 0) by a small UNet2DModel, whole clip in one pass, and
vocoded with InverseMelScale + Griffin-Lim. All noise and the Griffin-Lim start phase come from
the seeded generator, so the output depends only on (clip, params, weights, seed).

Weights: --checkpoint folder > model store HARDSPOOF_MODELS/mel-diffusion > the checkpoint
bundled in reconstruct/bundled/mel-diffusion. Train your own with `reconstruct fit --method diffusion`.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch

from manifests.errors import UsageError

from .base import Backend
from .registry import register

BUNDLED = Path(__file__).resolve().parent.parent / "bundled" / "mel-diffusion"


@dataclasses.dataclass(frozen=True)
class MelDiffusionParams:
    strength: float = 0.2  # how far to noise before denoising, (0, 1]: 0.2 keeps harmonics, 0.6 rewrites more
    steps: int = 25        # DDIM steps for the full schedule; int(steps * strength) are run
    gl_iters: int = 64     # Griffin-Lim iterations for vocoding

    def check(self) -> None:
        if not 0 < self.strength <= 1:
            raise ValueError(f"strength must be in (0, 1], got {self.strength}")
        if self.steps < 1 or self.gl_iters < 1:
            raise ValueError(f"steps and gl_iters must be >= 1, got {self.steps}, {self.gl_iters}")
        if int(self.steps * self.strength) < 1:
            raise ValueError(f"steps * strength = {self.steps * self.strength:g} runs no denoising step; "
                             f"raise steps or strength")


def find_checkpoint(name: str, checkpoint: str | Path | None) -> Path:
    """--checkpoint > model store > bundled; the folder must hold a mel-diffusion checkpoint."""
    from ..fit import META_FILE, WEIGHTS_FILE
    from ..weights import local_path

    path = local_path(name, checkpoint) or BUNDLED
    if path.is_file():
        path = path.parent
    missing = [f for f in (META_FILE, WEIGHTS_FILE, "config.json", "scheduler/scheduler_config.json")
               if not (path / f).is_file()]
    if missing:
        raise UsageError(f"{path} is not a mel-diffusion checkpoint (missing {', '.join(missing)}); "
                         f"make one with `reconstruct fit --method diffusion --corpus PATH --out DIR`")
    return path


@register
class MelDiffusion(Backend):
    name = "mel-diffusion"
    method = "diffusion"
    sample_rate = 16000
    Params = MelDiffusionParams
    weights = None  # no hub source: trained by `reconstruct fit`, one checkpoint bundled
    bundled = BUNDLED
    description = "small log-mel diffusion UNet (SDEdit, DDIM) + Griffin-Lim, trained on CPU by `reconstruct fit`"

    def load(self, checkpoint: Path | None) -> None:
        try:
            from diffusers import DDIMScheduler, UNet2DModel
        except ImportError:
            raise UsageError("mel-diffusion needs diffusers: pip install 'diffusers>=0.30'") from None
        from ..fit import META_FILE
        from ..melfeatures import MelConfig, MelFeatures

        path = find_checkpoint(self.name, checkpoint)
        meta = json.loads((path / META_FILE).read_text())
        self.features = MelFeatures(MelConfig.from_dict(meta["features"])).to(self.device)
        self.unet = UNet2DModel.from_pretrained(path, use_safetensors=True, low_cpu_mem_usage=False).to(self.device).eval()
        self.scheduler = DDIMScheduler.from_pretrained(path, subfolder="scheduler", clip_sample=False,
                                                       set_alpha_to_one=False)
        self.checkpoint_path = path
        self.checkpoint_sha256 = self.weights_sha256(path, self.params)

    @classmethod
    def weights_sha256(cls, path: Path, params) -> str:
        from ..fit import WEIGHTS_FILE
        from ..weights import checkpoint_sha256

        return checkpoint_sha256(path / WEIGHTS_FILE)

    def min_samples(self) -> int:
        return self.features.cfg.n_fft

    def denoise(self, z: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """SDEdit on a standardised log-mel (n_mels, frames) -> same shape."""
        from ..melfeatures import freq_channel

        p = self.params
        n_mels, frames = z.shape
        pad = -frames % 4  # two down-samplings in the UNet
        x0 = torch.nn.functional.pad(z[None, None], (0, pad, 0, 0), mode="replicate")
        self.scheduler.set_timesteps(p.steps)
        n_run = min(int(p.steps * p.strength), p.steps)
        timesteps = self.scheduler.timesteps[p.steps - n_run:]
        noise = torch.randn(x0.shape, generator=generator).to(self.device)
        x = self.scheduler.add_noise(x0, noise, timesteps[:1])
        freq = freq_channel(n_mels, x.shape[-1], 1, self.device)
        for t in timesteps:
            eps = self.unet(torch.cat([x, freq], dim=1), t).sample
            x = self.scheduler.step(eps, t, x, eta=0.0).prev_sample
        return x[0, 0, :, :frames]

    def _reconstruct(self, wav: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        z = self.features.encode(wav)
        return self.features.vocode(self.denoise(z, generator), wav.shape[0], self.params.gl_iters, generator)

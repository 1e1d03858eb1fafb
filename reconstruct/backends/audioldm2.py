"""AudioLDM 2 latent-diffusion reconstruction by SDEdit (Meng et al. 2022), through diffusers.

mel (the VAE's own analysis: 16 kHz, 64 bins, hop 160, log magnitude) -> VAE latent -> noise
added up to `strength` -> denoised by the UNet with the DDIM scheduler -> VAE decode ->
SpeechT5-HiFi-GAN vocoder. Conditioning is unconditional: zero vectors for both
cross-attention streams, so the text encoders (CLAP, Flan-T5, GPT-2) are never loaded.
Weights: the `vae`, `unet`, `scheduler` and `vocoder` sub-folders of `cvssp/audioldm2`,
each loaded with its class's `from_pretrained` from a local folder (no remote code).
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import ClassVar

import torch
import torch.nn.functional as F

from manifests.errors import UsageError

from .. import weights as W
from .base import Backend
from .registry import register

N_FFT, HOP, N_MELS = 1024, 160, 64  # AudioLDM's TacotronSTFT at 16 kHz


@dataclasses.dataclass(frozen=True)
class AudioLDM2Params:
    strength: float = 0.3  # fraction of the diffusion run re-done: 0 keeps the latent, 1 regenerates it
    steps: int = 50        # DDIM steps of a full run; int(steps * strength) are run

    def check(self) -> None:
        if not 0 < self.strength <= 1:
            raise ValueError(f"strength must be in (0, 1], got {self.strength}")
        if self.steps < 1 or int(self.steps * self.strength) < 1:
            raise ValueError(f"steps * strength must be >= 1 (got steps={self.steps}, strength={self.strength})")


def _configs(tiny: bool) -> dict[str, dict]:
    """Component configs: the published AudioLDM 2 architecture (from its original yaml), or tiny."""
    if tiny:
        return {
            "vae": dict(in_channels=1, out_channels=1, latent_channels=4, block_out_channels=[8, 16],
                        down_block_types=["DownEncoderBlock2D"] * 2, up_block_types=["UpDecoderBlock2D"] * 2,
                        layers_per_block=1, norm_num_groups=4),
            "unet": dict(in_channels=4, out_channels=4, block_out_channels=[8, 16], layers_per_block=1,
                         down_block_types=["DownBlock2D", "CrossAttnDownBlock2D"],
                         up_block_types=["CrossAttnUpBlock2D", "UpBlock2D"], norm_num_groups=4,
                         cross_attention_dim=[[None, 8, 12]] * 2, attention_head_dim=2),
            "vocoder": dict(model_in_dim=N_MELS, sampling_rate=16000, upsample_initial_channel=64,
                            upsample_rates=[5, 4, 2, 2, 2], upsample_kernel_sizes=[16, 16, 8, 4, 4],
                            resblock_kernel_sizes=[3], resblock_dilation_sizes=[[1, 3, 5]], normalize_before=False),
        }
    return {
        "vae": dict(in_channels=1, out_channels=1, latent_channels=8, block_out_channels=[128, 256, 512],
                    down_block_types=["DownEncoderBlock2D"] * 3, up_block_types=["UpDecoderBlock2D"] * 3,
                    layers_per_block=2),
        "unet": dict(in_channels=8, out_channels=8, block_out_channels=[128, 256, 384, 640], layers_per_block=2,
                     down_block_types=["DownBlock2D"] + ["CrossAttnDownBlock2D"] * 3,
                     up_block_types=["CrossAttnUpBlock2D"] * 3 + ["UpBlock2D"],
                     cross_attention_dim=[[None, 768, 1024]] * 4, attention_head_dim=[4, 8, 12, 20]),
        "vocoder": dict(model_in_dim=N_MELS, sampling_rate=16000, upsample_initial_channel=1024,
                        upsample_rates=[5, 4, 2, 2, 2], upsample_kernel_sizes=[16, 16, 8, 4, 4],
                        resblock_kernel_sizes=[3, 7, 11], resblock_dilation_sizes=[[1, 3, 5]] * 3,
                        normalize_before=False),
    }


_SCHEDULER = dict(num_train_timesteps=1000, beta_start=0.0015, beta_end=0.0195, beta_schedule="scaled_linear",
                  clip_sample=False, set_alpha_to_one=False, steps_offset=1)


@register
class AudioLDM2SDEdit(Backend):
    name = "audioldm2-sdedit"
    method = "diffusion"
    sample_rate = 16000
    Params = AudioLDM2Params
    weights = "cvssp/audioldm2"
    allow_patterns: ClassVar[list[str]] = [
        "model_index.json", *(f"{sub}/*.{ext}" for sub in ("vae", "unet", "scheduler", "vocoder")
                              for ext in ("json", "safetensors"))]
    description = "AudioLDM 2 latent diffusion, SDEdit (noise to `strength`, DDIM denoise), 16 kHz (diffusers)"

    @classmethod
    def random_weights(cls, folder: str | Path, tiny: bool = False) -> Path:
        """save_pretrained random-weights vae/unet/scheduler/vocoder in the hub repo's layout."""
        diffusers = W.require("diffusers", "diffusers")
        transformers = W.require("transformers", "transformers")
        folder, cfg = Path(folder), _configs(tiny)
        torch.manual_seed(0)
        diffusers.AutoencoderKL(**cfg["vae"]).save_pretrained(folder / "vae")
        diffusers.AudioLDM2UNet2DConditionModel(**cfg["unet"]).save_pretrained(folder / "unet")
        diffusers.DDIMScheduler(**_SCHEDULER).save_pretrained(folder / "scheduler")
        transformers.SpeechT5HifiGan(transformers.SpeechT5HifiGanConfig(**cfg["vocoder"])).save_pretrained(
            folder / "vocoder")
        return folder

    def load(self, checkpoint: Path | None) -> None:
        diffusers = W.require("diffusers", "diffusers")
        transformers = W.require("transformers", "transformers")
        path = W.resolve(self.name, self.weights, checkpoint, self.allow_patterns)
        missing = [s for s in ("vae", "unet", "scheduler", "vocoder") if not (path / s).is_dir()]
        if missing:
            raise UsageError(f"{path} is not an AudioLDM 2 folder: missing sub-folder(s) {', '.join(missing)}")
        kw = dict(local_files_only=True)
        self.vae = diffusers.AutoencoderKL.from_pretrained(path, subfolder="vae", **kw).eval().to(self.device)
        self.unet = diffusers.AudioLDM2UNet2DConditionModel.from_pretrained(path, subfolder="unet", **kw)
        self.unet = self.unet.eval().to(self.device)
        self.scheduler = diffusers.DDIMScheduler.from_pretrained(path, subfolder="scheduler", **kw)
        self.vocoder = transformers.SpeechT5HifiGan.from_pretrained(path / "vocoder", **kw).eval().to(self.device)
        if self.vocoder.config.model_in_dim != N_MELS or self.vocoder.config.sampling_rate != self.sample_rate:
            raise UsageError(f"{path}/vocoder takes {self.vocoder.config.model_in_dim} mels at "
                             f"{self.vocoder.config.sampling_rate} Hz; {self.name} needs {N_MELS} at {self.sample_rate}")
        vae_down = 2 ** (len(self.vae.config.block_out_channels) - 1)
        self.frames_multiple = vae_down * 2 ** (len(self.unet.config.down_block_types) - 1)
        self.context = self._unconditional()
        self.checkpoint_sha256 = W.checkpoint_sha256(path)

    def _unconditional(self) -> dict[str, torch.Tensor]:
        """Zero conditioning for the UNet's cross-attention streams (GPT-2 stream, then T5 stream)."""
        dims = next((d for d in self.unet.config.cross_attention_dim if isinstance(d, (list, tuple))), None)
        dims = [d for d in (dims or [self.unet.config.cross_attention_dim]) if d is not None]
        names = ["encoder_hidden_states", "encoder_hidden_states_1"]
        return {n: torch.zeros(1, 1, d, device=self.device) for n, d in zip(names, dims)}

    def params_json(self) -> str:
        p = dataclasses.asdict(self.params)
        p.update(conditioning="unconditional (zeros)", scheduler="DDIM",
                 denoise_steps=int(self.params.steps * self.params.strength))
        return json.dumps(p, sort_keys=True)

    def min_samples(self) -> int:
        return HOP  # one mel frame

    def log_mel(self, wav: torch.Tensor) -> torch.Tensor:
        """wav: (T,) -> (frames = ceil(T / 160), 64) natural-log magnitude mel, as AudioLDM computes it."""
        import torchaudio

        n = wav.shape[0]
        x = F.pad(wav, (0, -n % HOP)).view(1, 1, -1)
        x = F.pad(x, ((N_FFT - HOP) // 2, (N_FFT - HOP) // 2), mode="reflect" if n > N_FFT else "constant")
        mel = torchaudio.transforms.MelSpectrogram(
            self.sample_rate, n_fft=N_FFT, hop_length=HOP, n_mels=N_MELS, f_min=0.0, f_max=8000.0, power=1.0,
            center=False, norm="slaney", mel_scale="slaney").to(wav.device)(x.view(-1))
        return torch.log(mel.clamp_min(1e-5)).T

    def _reconstruct(self, wav: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        peak = float(wav.abs().max())
        gain = 0.5 / peak if peak > 1e-4 else 1.0  # AudioLDM was trained on peak-0.5 audio
        mel = self.log_mel(wav * gain)
        frames = mel.shape[0]
        mel = F.pad(mel, (0, 0, 0, -frames % self.frames_multiple), value=float(torch.log(torch.tensor(1e-5))))
        scale = self.vae.config.scaling_factor
        latents = self.vae.encode(mel[None, None]).latent_dist.mode() * scale
        p = self.params
        self.scheduler.set_timesteps(p.steps, device=self.device)
        timesteps = self.scheduler.timesteps[p.steps - int(p.steps * p.strength):]
        noise = torch.randn(latents.shape, generator=generator).to(self.device)
        latents = self.scheduler.add_noise(latents, noise, timesteps[:1])
        for t in timesteps:
            model_in = self.scheduler.scale_model_input(latents, t)
            eps = self.unet(model_in, t, **self.context).sample
            latents = self.scheduler.step(eps, t, latents, generator=generator).prev_sample
        mel_out = self.vae.decode(latents / scale).sample[0, 0, :frames]  # (frames, 64)
        out = self.vocoder(mel_out[None]).reshape(-1)
        return out[:wav.shape[0]] / gain

"""SemantiCodec (Liu et al. 2024), the paper's diffusion codec, through the upstream `semanticodec` package.

An AudioMAE encoder turns each 10.24 s window into semantic tokens (k-means codebook) and
acoustic tokens (LSTM + VQ); a latent-diffusion decoder (DDIM, classifier-free guidance) turns
the tokens back into a 64-bin mel that its HiFi-GAN vocodes; 16 kHz. Everything runs in the
upstream package's own classes and methods (`AudioMAEConditionQuantResEncoder`, `LatentDiffusion`,
`SemantiCodec.decode`), but built here from local files: the upstream `SemantiCodec.__init__`
downloads from the hub into `./pretrained` and picks its own device, so it is never called.
Weights: `encoder.ckpt` and `decoder.ckpt` (state dicts, `torch.load(weights_only=True)`) and the
semantic codebook (.npy, no pickle); layouts and checks in `semanticodec_files.py`.

The package is not on the package index: `pip install -e ".[semanticodec]"` installs it from its
git repository at a pinned commit (INSTALL below).
"""
from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import io
import json
import math
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from manifests.errors import UsageError

from .. import weights as W
from . import semanticodec_files as SF
from .base import Backend
from .registry import register

COMMIT = "7c05d426d2971505014b96fc151522f78ff2a265"  # haoheliu/SemantiCodec-inference, tested
INSTALL = f"'semanticodec @ git+https://github.com/haoheliu/SemantiCodec-inference@{COMMIT}'"
KBPS = {(100, 32768): 1.40, (50, 32768): 0.70, (25, 32768): 0.35, (100, 16384): 1.35, (50, 16384): 0.68,
        (25, 16384): 0.34, (100, 8192): 1.30, (50, 8192): 0.65, (25, 8192): 0.33, (100, 4096): 1.25,
        (50, 4096): 0.63, (25, 4096): 0.31}  # the upstream README's table


@dataclasses.dataclass(frozen=True)
class SemantiCodecParams:
    token_rate: int = 100              # tokens per second: 25, 50 or 100 (published variants)
    semantic_vocab_size: int = 16384   # 4096, 8192, 16384 or 32768 (published variants)
    ddim_steps: int = 50               # DDIM steps of the latent-diffusion decoder (upstream default)
    guidance_scale: float = 2.0        # classifier-free guidance scale (upstream `cfg_scale` default)

    def check(self) -> None:
        if self.token_rate not in SF.RATES:
            raise ValueError(f"token_rate must be 25, 50 or 100, got {self.token_rate}")
        if self.semantic_vocab_size not in SF.VOCABS:
            raise ValueError(f"semantic_vocab_size must be 4096, 8192, 16384 or 32768, got {self.semantic_vocab_size}")
        if not 1 <= self.ddim_steps <= 1000:
            raise ValueError(f"ddim_steps must be in 1..1000, got {self.ddim_steps}")
        if not 0 < self.guidance_scale < 100:
            raise ValueError(f"guidance_scale must be in (0, 100), got {self.guidance_scale}")


def _missing() -> str | None:
    """The one-line install instruction when the upstream package is not importable, else None."""
    if importlib.util.find_spec("semanticodec") is not None:
        return None
    return (f"semanticodec needs the upstream `semanticodec` package, which is not installed (it is not on PyPI); "
            f"install it with `pip install {INSTALL}` (or `pip install -e \".[semanticodec]\"` in a hardspoof checkout)")


@register
class SemantiCodec(Backend):
    name = "semanticodec"
    method = "diffusion"
    sample_rate = 16000
    Params = SemantiCodecParams
    weights = "haoheliu/SemantiCodec"
    allow_patterns: ClassVar[list[str]] = ["semanticodec_tokenrate_*/encoder.ckpt",
                                           "semanticodec_tokenrate_*/decoder.ckpt", "codebook_idx/*/*.npy"]
    description = "SemantiCodec: AudioMAE tokens -> latent diffusion (DDIM) -> HiFi-GAN, 16 kHz (paper's diffusion codec)"
    chunk_s = 10.24 * 30  # clips up to ~5 min go to the upstream whole; it cuts them into 10.24 s windows itself

    @staticmethod
    def missing_library() -> str | None:
        """Passed to `weights.not_available` by the run's preflight: without the package, staging weights would not help."""
        return _missing()

    @classmethod
    def weights_location(cls, checkpoint: str | Path | None = None) -> str | None:
        """As the base, plus: the folder's files are checked (a missing or mismatched one is a UsageError
        naming it, before any worker starts); without the package, an explicit --checkpoint is a UsageError
        naming the install command, and no checkpoint counts as no weights (`--method diffusion` moves on)."""
        where = super().weights_location(checkpoint)
        if where in ("checkpoint", "store"):
            SF.check_folder(W.local_path(cls.name, checkpoint))
            if _missing() is not None:
                if checkpoint is not None:
                    raise UsageError(_missing())
                return None
        return where

    @classmethod
    def random_weights(cls, folder: str | Path, tiny: bool = False, token_rate: int = 100,
                       semantic_vocab_size: int = 16384) -> Path:
        """Random weights of one published variant in the hub layout. The upstream classes fix the
        architecture (ViT-B AudioMAE, 1024-channel HiFi-GAN), so `tiny` changes nothing: about 2.3 GB."""
        if _missing() is not None:
            raise UsageError(_missing())
        folder = Path(folder)
        files = SF.variant_files(folder, token_rate, semantic_vocab_size)
        for f in files.values():
            f.parent.mkdir(parents=True, exist_ok=True)
        rows, dim = SF.VOCABS[semantic_vocab_size], SF.RATES[token_rate][0]
        rng = np.random.default_rng(0)
        np.save(files["codebook"], rng.standard_normal((rows, dim)).astype(np.float32))
        torch.manual_seed(0)
        encoder, decoder = _build(token_rate, semantic_vocab_size, files["codebook"])
        torch.save(encoder.state_dict(), files["encoder"])
        del encoder
        torch.save(decoder.state_dict(), files["decoder"])
        return folder

    def load(self, checkpoint: Path | None) -> None:
        if _missing() is not None:
            raise UsageError(_missing())
        from semanticodec.main import SemantiCodec as Upstream

        p = self.params
        path = W.resolve(self.name, self.weights, checkpoint, self.allow_patterns)
        files = SF.check_variant(path, p.token_rate, p.semantic_vocab_size)
        encoder, decoder = _build(p.token_rate, p.semantic_vocab_size, files["codebook"])
        with contextlib.redirect_stdout(io.StringIO()):
            encoder.load_state_dict(_load(files["encoder"]))
            decoder.load_state_dict(_load(files["decoder"]))
        decoder.device = self.device  # LatentDiffusion picked cuda/mps itself; its DDIM sampler follows this
        codec = Upstream.__new__(Upstream)  # the upstream object without its downloading __init__
        torch.nn.Module.__init__(codec)
        codec.token_rate, codec.stack_factor_K = p.token_rate, 100 / p.token_rate
        codec.ddim_sample_step, codec.cfg_scale, codec.device = p.ddim_steps, p.guidance_scale, self.device
        codec.encoder, codec.decoder = encoder, decoder
        self.codec = codec.eval().to(self.device)
        self.checkpoint_sha256 = SF.files_sha256(files)

    @classmethod
    def weights_sha256(cls, path: Path, params) -> str:
        return SF.files_sha256(SF.check_variant(path, params.token_rate, params.semantic_vocab_size))

    def params_json(self) -> str:
        p = dataclasses.asdict(self.params)
        p.update(kbps=KBPS[(self.params.token_rate, self.params.semantic_vocab_size)], ddim_eta=1.0,
                 window_s=10.24)
        return json.dumps(p, sort_keys=True)

    def tokens(self, wav: torch.Tensor) -> torch.Tensor:
        """wav: (T,) at 16 kHz -> (1, tokens, 2) semantic and acoustic tokens: the upstream `load_audio` +
        `encode`, fed a tensor instead of a file path (same padding, fbank and trimming)."""
        from semanticodec.main import AUDIOMAE_PATCH_DURATION, MEL_TARGET_LENGTH, SAMPLE_RATE, SEGMENT_DURATION
        from semanticodec.utils import extract_kaldi_fbank_feature

        x = wav.detach().float().cpu().view(1, -1)
        duration = x.shape[1] / SAMPLE_RATE
        duration = duration + (AUDIOMAE_PATCH_DURATION - duration % AUDIOMAE_PATCH_DURATION)
        target_tokens = 8 * duration / AUDIOMAE_PATCH_DURATION / self.codec.stack_factor_K
        segment = int(SAMPLE_RATE * SEGMENT_DURATION)
        x = torch.cat([x, torch.zeros(1, segment - x.shape[1] % segment)], dim=1)  # as upstream: always pads
        mel = extract_kaldi_fbank_feature(x, SAMPLE_RATE, target_length=MEL_TARGET_LENGTH * (x.shape[1] // segment))
        tokens = self.codec.encoder(mel["ta_kaldi_fbank"].unsqueeze(0).to(self.device))
        return tokens[:, :math.ceil(target_tokens), :]

    def raw(self, wav: torch.Tensor) -> np.ndarray:
        """The upstream's own calls on one clip at 16 kHz, nothing else (benchmarks compare against this)."""
        return self.codec.decode(self.tokens(wav))

    def _reconstruct(self, wav: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):  # the upstream sampler draws from the global RNG
            torch.manual_seed(generator.initial_seed())
            with contextlib.redirect_stderr(io.StringIO()):  # one tqdm bar per window otherwise
                out = self.raw(wav)
        return torch.from_numpy(np.ascontiguousarray(out, dtype=np.float32).reshape(-1))


def _build(token_rate: int, vocab: int, codebook: Path):
    """The upstream encoder and decoder classes with the published configuration, random weights."""
    from semanticodec.config import get_config
    from semanticodec.modules.decoder.latent_diffusion.util import instantiate_from_config
    from semanticodec.modules.encoder.encoder import AudioMAEConditionQuantResEncoder

    config, _, feature_dim, lstm_layers, _ = get_config(token_rate, vocab)
    with contextlib.redirect_stdout(io.StringIO()):  # parameter counts, "Removing weight norm..."
        encoder = AudioMAEConditionQuantResEncoder(feature_dimension=feature_dim, lstm_layer=lstm_layers,
                                                   centroid_npy_path=str(codebook))
        decoder = instantiate_from_config(config["model"])
    return encoder.eval(), decoder.eval()


def _load(file: Path) -> dict:
    """A state dict, tensors only (no pickled code), memory-mapped where the file format allows."""
    try:
        return torch.load(file, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError as e:
        if "mmap" not in str(e):
            raise
        return torch.load(file, map_location="cpu", weights_only=True)

"""Weight-free lossy codecs through libsndfile: Opus, MP3 and Vorbis round trips.

libsndfile exposes a 0..1 "compression level", not a bitrate; the back-end finds the level
that gives the requested bitrate once, on a fixed reference signal, by bisection, and
records that level beside the bitrate.
"""
from __future__ import annotations

import dataclasses
import io
import json

import numpy as np
import soundfile as sf
import torch

from .base import Backend
from .registry import register

_FORMATS = {  # codec -> (libsndfile format, subtype, internal sample rate)
    "opus": ("OGG", "OPUS", 16000),
    "mp3": ("MP3", "MPEG_LAYER_III", 16000),
    "vorbis": ("OGG", "VORBIS", 16000),
}


@dataclasses.dataclass(frozen=True)
class LossyParams:
    bitrate_kbps: float = 16.0  # target bitrate; the nearest the encoder offers is used

    def check(self) -> None:
        if not 1 <= self.bitrate_kbps <= 512:
            raise ValueError(f"bitrate_kbps must be in [1, 512], got {self.bitrate_kbps}")


def _encode(wav: np.ndarray, sr: int, fmt: str, subtype: str, level: float) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, wav, sr, format=fmt, subtype=subtype, compression_level=level)
    return buf.getvalue()


def _reference(sr: int) -> np.ndarray:
    """4 s of seeded speech-like noise (1/f spectrum, syllable-rate envelope) for calibration."""
    rng = np.random.default_rng(0)
    n = 4 * sr
    spec = np.fft.rfft(rng.standard_normal(n)) / np.sqrt(np.arange(1, n // 2 + 2))
    x = np.fft.irfft(spec, n)
    x *= 0.5 + 0.5 * np.sin(2 * np.pi * 4 * np.arange(n) / sr)
    return (0.3 * x / np.abs(x).max()).astype(np.float32)


class _LossyCodec(Backend):
    method = "codec"
    Params = LossyParams
    codec: str

    def load(self, checkpoint) -> None:
        fmt, subtype, sr = _FORMATS[self.codec]
        ref = _reference(sr)

        def kbps(level: float) -> float:
            try:
                return len(_encode(ref, sr, fmt, subtype, level)) * 8 / 4 / 1000
            except sf.LibsndfileError:
                return float("nan")

        lo, hi = 0.0, 0.99  # bitrate falls as the level rises; 1.0 is refused by some encoders
        for _ in range(14):
            mid = (lo + hi) / 2
            rate = kbps(mid)
            if rate != rate or rate < self.params.bitrate_kbps:
                hi = mid
            else:
                lo = mid
        self.level = round(lo, 4)
        self.achieved_kbps = round(kbps(self.level), 1)

    def params_json(self) -> str:
        p = dataclasses.asdict(self.params)
        p.update(codec=self.codec, compression_level=self.level, reference_kbps=self.achieved_kbps)
        return json.dumps(p, sort_keys=True)

    def min_samples(self) -> int:
        return 160

    def _reconstruct(self, wav: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        fmt, subtype, sr = _FORMATS[self.codec]
        data = _encode(wav.cpu().numpy(), sr, fmt, subtype, self.level)
        out, _ = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
        return torch.from_numpy(out[:, 0].copy())


@register
class Opus(_LossyCodec):
    name = "opus"
    codec = "opus"
    sample_rate = 16000
    description = "Opus round trip through libsndfile, bitrate as a parameter, no weights"


@register
class Mp3(_LossyCodec):
    name = "mp3"
    codec = "mp3"
    sample_rate = 16000
    description = "MP3 (LAME) round trip through libsndfile, bitrate as a parameter, no weights"


@register
class Vorbis(_LossyCodec):
    name = "vorbis"
    codec = "vorbis"
    sample_rate = 16000
    description = "Ogg Vorbis round trip through libsndfile, bitrate as a parameter, no weights"

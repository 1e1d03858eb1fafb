"""Audio I/O shared by both sides: soundfile for reading/writing, torchaudio for resampling.

Every loader returns mono float32 in [-1, 1]; every writer publishes whole files only (temp +
rename locally, one complete upload to an object store), so a killed job never leaves a
partial file under the final name. Locations are local paths or URIs (see `storage`).
"""
from __future__ import annotations

import os

import numpy as np
import soundfile as sf

from . import storage
from .errors import first_line

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".opus")


class AudioError(RuntimeError):
    """A single clip cannot be read or written; the message is the reason, for a `failed` row."""


def resample(wav: np.ndarray, sr_from: int, sr_to: int) -> np.ndarray:
    """Band-limited resampling. wav: (T,) float32 -> (ceil(T * sr_to / sr_from),) float32."""
    if sr_from == sr_to:
        return wav.astype(np.float32, copy=False)
    import torch
    import torchaudio.functional as AF

    out = AF.resample(torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32)), sr_from, sr_to)
    return out.numpy()


def fit_length(wav: np.ndarray, length: int) -> np.ndarray:
    """Trim or zero-pad (T,) to exactly `length` samples."""
    if wav.shape[0] >= length:
        return wav[:length]
    return np.pad(wav, (0, length - wav.shape[0]))


def load_audio(path: str | os.PathLike, sr: int | None = None) -> tuple[np.ndarray, int]:
    """Read any libsndfile format as mono float32 (channels averaged), optionally resampled.

    Returns (wav (T,) float32, sample rate). Raises AudioError with a one-line reason.
    """
    path, name = os.fspath(path), storage.name(path)
    try:
        if not storage.is_uri(path) and not os.path.isfile(path):
            raise FileNotFoundError(path)
        src = storage.readable(path)
    except (FileNotFoundError, IsADirectoryError):
        raise AudioError(f"not a readable file: {path}") from None
    except OSError as e:
        raise AudioError(f"cannot read {path}: {first_line(e)}") from None
    try:
        data, file_sr = sf.read(src, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError, OSError) as e:
        raise AudioError(f"cannot decode {name}: {first_line(e)}")
    if data.shape[0] == 0:
        raise AudioError(f"{name} has no samples")
    if not np.isfinite(data).all():
        raise AudioError(f"{name} contains NaN or Inf samples")
    wav = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    wav = np.clip(wav, -1.0, 1.0).astype(np.float32, copy=False)
    if sr is not None and sr != file_sr:
        wav, file_sr = resample(wav, file_sr, sr), sr
    return wav, int(file_sr)


def save_audio(path: str | os.PathLike, wav: np.ndarray, sr: int, subtype: str = "PCM_16") -> str:
    """Write (T,) audio as FLAC (or by suffix), atomically. Refuses non-finite audio. Returns the location."""
    name = storage.name(path)
    wav = np.asarray(wav, dtype=np.float32)
    if wav.ndim != 1 or wav.size == 0:
        raise AudioError(f"refusing to write audio of shape {wav.shape} to {name}")
    if not np.isfinite(wav).all():
        raise AudioError(f"refusing to write NaN/Inf audio to {name}")
    fmt = {".flac": "FLAC", ".wav": "WAV", ".ogg": "OGG"}.get(storage.suffix(name), "FLAC")
    wav = np.clip(wav, -1.0, 1.0)
    return storage.write_atomic(path, lambda fh: sf.write(fh, wav, sr, format=fmt, subtype=subtype))


def describe(path: str | os.PathLike) -> dict:
    """sample_rate, num_samples, duration_s and sha256 of an audio file (header decode only)."""
    try:
        src = storage.readable(path)
        info = sf.info(src)
    except (sf.LibsndfileError, RuntimeError, TypeError, OSError) as e:
        raise AudioError(f"cannot decode {storage.name(path)}: {first_line(e, 'unknown')}")
    return {
        "sample_rate": int(info.samplerate),
        "num_samples": int(info.frames),
        "duration_s": float(info.frames) / info.samplerate if info.samplerate else 0.0,
        "sha256": storage.sha256(src),
    }

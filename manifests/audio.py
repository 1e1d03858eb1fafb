"""Audio I/O shared by both sides: soundfile for reading/writing, torchaudio for resampling.

Every loader returns mono float32 in [-1, 1]; every writer goes through temp + rename, so a
killed job never leaves a partial file under the final name.
"""
from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

import numpy as np
import soundfile as sf

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
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"not a readable file: {path}")
    try:
        data, file_sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError, OSError) as e:
        raise AudioError(f"cannot decode {path.name}: {first_line(e)}")
    if data.shape[0] == 0:
        raise AudioError(f"{path.name} has no samples")
    if not np.isfinite(data).all():
        raise AudioError(f"{path.name} contains NaN or Inf samples")
    wav = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    wav = np.clip(wav, -1.0, 1.0).astype(np.float32, copy=False)
    if sr is not None and sr != file_sr:
        wav, file_sr = resample(wav, file_sr, sr), sr
    return wav, int(file_sr)


def save_audio(path: str | os.PathLike, wav: np.ndarray, sr: int, subtype: str = "PCM_16") -> Path:
    """Write (T,) audio as FLAC (or by suffix) via temp + fsync + rename. Refuses non-finite audio."""
    path = Path(path)
    wav = np.asarray(wav, dtype=np.float32)
    if wav.ndim != 1 or wav.size == 0:
        raise AudioError(f"refusing to write audio of shape {wav.shape} to {path.name}")
    if not np.isfinite(wav).all():
        raise AudioError(f"refusing to write NaN/Inf audio to {path.name}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
    fmt = {".flac": "FLAC", ".wav": "WAV", ".ogg": "OGG"}.get(path.suffix.lower(), "FLAC")
    try:
        sf.write(str(tmp), np.clip(wav, -1.0, 1.0), sr, format=fmt, subtype=subtype)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def describe(path: str | os.PathLike) -> dict:
    """sample_rate, num_samples, duration_s and sha256 of an audio file (header read only)."""
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError, OSError) as e:
        raise AudioError(f"cannot decode {Path(path).name}: {first_line(e, 'unknown')}")
    return {
        "sample_rate": int(info.samplerate),
        "num_samples": int(info.frames),
        "duration_s": float(info.frames) / info.samplerate if info.samplerate else 0.0,
        "sha256": sha256_file(path),
    }

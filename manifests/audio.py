"""Audio I/O shared by both sides: soundfile for reading/writing, torchaudio for resampling.

Every loader returns mono float32 in [-1, 1]; every writer publishes whole files only (temp +
rename locally, one complete upload to an object store), so a killed job never leaves a
partial file under the final name. Locations are local paths or URIs (see `storage`).

Only regular files are opened (a named pipe would block forever), and a header is checked
before any sample is decoded: a sample rate outside MIN_RATE..MAX_RATE, or (when the caller
sets a limit) a declared duration past it, is refused, so a 32 kB file that claims to be 1 Hz
cannot make a resampler allocate gigabytes. Files are read in blocks of BLOCK frames and
mixed down per block, so a multi-channel file never exists as a float32 array of all channels.
"""
from __future__ import annotations

import contextlib
import io
import os
import stat
from typing import Iterator

import numpy as np
import soundfile as sf

from . import storage
from .errors import UsageError, first_line

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".opus")
MIN_RATE, MAX_RATE = 4_000, 384_000  # Hz: what a header may declare and still be taken for audio
MAX_SECONDS = 4 * 3600.0             # default longest declared duration (--max-duration), seconds
BLOCK = 1 << 18                      # frames per read/write block: 16 s at 16 kHz
_DECODE_ERRORS = (sf.LibsndfileError, RuntimeError, TypeError, ValueError, OSError)


class AudioError(RuntimeError):
    """A single clip cannot be read or written; the message is the reason, for a `failed` row."""


def _decode_reason(name: str, e: BaseException) -> str:
    """`cannot decode NAME: why`. libsndfile says "(possibly a pipe?)" of any regular file whose header it does not
    know; by now the file is known to be a regular file, so say that instead."""
    why = first_line(e)
    if "possibly a pipe" in why or "not a regular file" in why:
        why = "not in an audio format this reader knows (unrecognised or damaged header)"
    return f"cannot decode {name}: {why}"


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


def header_problem(name: str, samplerate: int, frames: int, max_seconds: float | None = None) -> str | None:
    """Why a header (rate in Hz, length in frames) must not be decoded, or None."""
    if not MIN_RATE <= samplerate <= MAX_RATE:
        return (f"{name}: header declares a sample rate of {samplerate} Hz, outside {MIN_RATE // 1000}-"
                f"{MAX_RATE // 1000} kHz; not decoded")
    if max_seconds is not None and frames / samplerate > max_seconds:
        return (f"{name}: header declares {frames / samplerate:.0f} s, longer than the {max_seconds:g} s "
                "limit (--max-duration); not decoded")
    return None


def special_file_problem(path: str | os.PathLike) -> str | None:
    """For a local path that exists but is not a regular file (after symlinks): why it is not read."""
    path = os.fspath(path)
    if storage.is_uri(path):
        return None
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None  # missing: the caller says so in its own words
    except OSError as e:
        return f"cannot read {storage.name(path)}: {e.strerror or first_line(e)}"
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    what = "a named pipe (FIFO)" if stat.S_ISFIFO(mode) else "a socket or device file"
    return f"{storage.name(path)} is {what}, not a regular file; not read"


def _source(path: str) -> str | io.BytesIO:
    """What soundfile opens for `path`, after checking that it is a regular file that can be read."""
    problem = special_file_problem(path)
    if problem:
        raise AudioError(problem)
    try:
        if not storage.is_uri(path) and not os.path.isfile(path):
            raise FileNotFoundError(path)
        return storage.readable(path)
    except (FileNotFoundError, IsADirectoryError):
        raise AudioError(f"not a readable file: {path}") from None
    except (OSError, UsageError) as e:  # UsageError: a bucket that cannot be opened fails this clip alone
        raise AudioError(f"cannot read {path}: {first_line(e)}") from None


def open_sound(path: str | os.PathLike, max_seconds: float | None = None) -> sf.SoundFile:
    """Open a regular audio file for reading after checking its header (see `header_problem`).
    Raises AudioError with a one-line reason; the caller closes the file."""
    path = os.fspath(path)
    name = storage.name(path)
    src = _source(path)
    try:
        f = sf.SoundFile(src)
    except _DECODE_ERRORS as e:
        raise AudioError(_decode_reason(name, e)) from None
    problem = header_problem(name, f.samplerate, f.frames, max_seconds)
    if problem:
        f.close()
        raise AudioError(problem)
    return f


def read_blocks(f: sf.SoundFile, name: str, block: int = BLOCK) -> Iterator[np.ndarray]:
    """The rest of an open file as mono float32 blocks of up to `block` frames, clipped to [-1, 1].
    Raises AudioError when it cannot be decoded or holds NaN/Inf."""
    while True:
        try:
            data = f.read(block, dtype="float32", always_2d=True)
        except _DECODE_ERRORS as e:
            raise AudioError(_decode_reason(name, e)) from None
        if data.shape[0] == 0:
            return
        if not np.isfinite(data).all():
            raise AudioError(f"{name} contains NaN or Inf samples")
        mono = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
        yield np.clip(mono, -1.0, 1.0, out=np.empty(mono.shape, np.float32))


def load_audio(path: str | os.PathLike, sr: int | None = None,
               max_seconds: float | None = None) -> tuple[np.ndarray, int]:
    """Read any libsndfile format as mono float32 (channels averaged), optionally resampled to `sr`.

    Returns (wav (T,) float32, sample rate in Hz). A header with an implausible rate, or declaring
    more than `max_seconds` seconds, is refused before decoding. Raises AudioError with a one-line reason.
    """
    path = os.fspath(path)
    name = storage.name(path)
    with open_sound(path, max_seconds) as f:
        file_sr = int(f.samplerate)
        wav, n = np.empty(min(max(int(f.frames), 0), 1 << 28), np.float32), 0  # pages committed as filled
        for mono in read_blocks(f, name):
            if n + mono.shape[0] > wav.shape[0]:  # the header under-counted: grow
                grown = np.empty(max(2 * wav.shape[0], n + mono.shape[0]), np.float32)
                grown[:n] = wav[:n]
                wav = grown
            wav[n:n + mono.shape[0]] = mono
            n += mono.shape[0]
    if n == 0:
        raise AudioError(f"{name} has no samples")
    wav = wav[:n]
    if sr is not None and sr != file_sr:
        wav, file_sr = resample(wav, file_sr, sr), sr
    return wav, file_sr


def save_audio(path: str | os.PathLike, wav: np.ndarray, sr: int, subtype: str = "PCM_16") -> str:
    """Write (T,) audio as FLAC (or by suffix), atomically, in blocks (no full-length copy).
    Refuses non-finite audio. Returns the location."""
    name = storage.name(path)
    wav = np.asarray(wav, dtype=np.float32)
    if wav.ndim != 1 or wav.size == 0:
        raise AudioError(f"refusing to write audio of shape {wav.shape} to {name}")
    if not all(np.isfinite(wav[i:i + BLOCK]).all() for i in range(0, wav.shape[0], BLOCK)):
        raise AudioError(f"refusing to write NaN/Inf audio to {name}")
    fmt = {".flac": "FLAC", ".wav": "WAV", ".ogg": "OGG"}.get(storage.suffix(name), "FLAC")

    def write(fh) -> None:
        with sound_writer(fh, sr, fmt, subtype) as f:
            for i in range(0, wav.shape[0], BLOCK):
                f.write(np.clip(wav[i:i + BLOCK], -1.0, 1.0))

    return storage.write_atomic(path, write)


class _KeepWriteError:
    """A binary file for soundfile's virtual I/O that keeps the first OSError of a write, seek, tell or flush
    (a full disk: ENOSPC, EDQUOT) instead of raising it inside libsndfile's C callback, where it would print a
    traceback and come back as a bare AssertionError; after an error every call does nothing."""

    def __init__(self, fh) -> None:
        self.fh, self.error = fh, None

    def _call(self, fn, *args, failed):
        if self.error is not None:
            return failed
        try:
            return fn(*args)
        except OSError as e:
            self.error = e
            return failed

    def write(self, data) -> int:
        return self._call(self.fh.write, data, failed=0)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._call(self.fh.seek, offset, whence, failed=-1)

    def tell(self) -> int:
        return self._call(self.fh.tell, failed=-1)

    def flush(self) -> None:
        self._call(self.fh.flush, failed=None)


@contextlib.contextmanager
def sound_writer(fh, sr: int, fmt: str, subtype: str = "PCM_16") -> Iterator[sf.SoundFile]:
    """A mono soundfile writer on an open binary file. An OSError of the file (e.g. no space left on device)
    is raised as itself, with its errno, once the writer stops: never a C-callback traceback or an
    AssertionError, so a caller can tell a full disk from a bad clip."""
    guard = _KeepWriteError(fh)
    try:
        with sf.SoundFile(guard, "w", sr, 1, subtype=subtype, format=fmt) as f:
            yield f
    except Exception:
        if guard.error is not None:
            raise guard.error from None
        raise
    if guard.error is not None:
        raise guard.error


def describe(path: str | os.PathLike) -> dict:
    """sample_rate, num_samples, duration_s and sha256 of an audio file (header decode only)."""
    problem = special_file_problem(path)
    if problem:
        raise AudioError(problem)
    try:
        src = storage.readable(path)
        info = sf.info(src)
    except (sf.LibsndfileError, RuntimeError, TypeError, OSError, UsageError) as e:
        raise AudioError(_decode_reason(storage.name(path), e) if str(e).strip() else
                         f"cannot decode {storage.name(path)}: unknown")
    return {
        "sample_rate": int(info.samplerate),
        "num_samples": int(info.frames),
        "duration_s": float(info.frames) / info.samplerate if info.samplerate else 0.0,
        "sha256": storage.sha256(src),
    }

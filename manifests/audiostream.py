"""Long audio in bounded memory: a file as mono float32 blocks, resampled on the fly.

`stream(path, sr)` yields what `load_audio(path, sr)` returns, in pieces: the same samples when
no resampling is needed, and otherwise the same band-limited resampling (torchaudio's sinc
kernel) computed over overlapping segments, equal to the whole-signal result up to float
rounding. Memory is a few blocks whatever the file's length, rate or channel count.
"""
from __future__ import annotations

import math
import os
from typing import Iterator

import numpy as np
import soundfile as sf

from . import storage
from .audio import BLOCK, AudioError, open_sound, read_blocks

STREAM_ABOVE = 1 << 24  # samples (frames x channels, ~17 min of 16 kHz mono): longer files are streamed


class Resampler:
    """Streaming version of `audio.resample(x, sr_from, sr_to)`: `push` input blocks, get the output
    samples that are final; `flush` at the end. The concatenated outputs have the whole-signal
    length, ceil(T * sr_to / sr_from).

    torchaudio resamples with a strided convolution: every `o` input samples (o = sr_from / gcd)
    give `n` output samples (n = sr_to / gcd) from a kernel reaching `width` samples to each side.
    Segments start at multiples of `o` and carry a margin past the kernel's reach on both sides,
    so each output sample sees exactly the input it sees in the whole-signal computation.
    """

    def __init__(self, sr_from: int, sr_to: int, segment: int = BLOCK) -> None:
        g = math.gcd(int(sr_from), int(sr_to))
        self.sr_from, self.sr_to = int(sr_from), int(sr_to)
        self.o, self.n = self.sr_from // g, self.sr_to // g
        width = math.ceil(6 * self.o / (min(self.o, self.n) * 0.99))  # torchaudio's default kernel reach
        self.margin = self.o * (math.ceil(width / self.o) + 2)        # input samples, a multiple of o
        self.segment = self.o * max(1, math.ceil(segment / self.o))   # input samples per step, a multiple of o
        self.buf = np.zeros(0, np.float32)
        self.buf_start = 0  # absolute input index of buf[0]
        self.next = 0       # absolute input index where the next output segment starts (a multiple of o)
        self.seen = 0       # input samples pushed so far

    def _run(self, a: int, b: int, final: bool) -> np.ndarray:
        """Outputs of input [a, b) (b = end of input when final)."""
        from .audio import resample

        lo = max(0, a - self.margin)
        hi = self.seen if final else b + self.margin
        y = resample(self.buf[lo - self.buf_start:hi - self.buf_start], self.sr_from, self.sr_to)
        skip = (a - lo) // self.o * self.n
        count = math.ceil(self.n * (b - a) / self.o)
        return y[skip:skip + count]

    def push(self, x: np.ndarray) -> np.ndarray:
        """Append (T,) float32 input; return the output samples now final (possibly none)."""
        self.buf = np.concatenate([self.buf, np.asarray(x, np.float32)])
        self.seen += x.shape[0]
        out = []
        while self.next + self.segment + self.margin <= self.seen:
            out.append(self._run(self.next, self.next + self.segment, final=False))
            self.next += self.segment
        drop = max(0, self.next - self.margin) - self.buf_start
        if drop > 0:
            self.buf, self.buf_start = self.buf[drop:], self.buf_start + drop
        return np.concatenate(out) if out else np.zeros(0, np.float32)

    def flush(self) -> np.ndarray:
        """The remaining output samples, through the end of the input."""
        if self.next >= self.seen:
            return np.zeros(0, np.float32)
        out = self._run(self.next, self.seen, final=True)
        self.next = self.seen
        return out


def is_long(path: str | os.PathLike, above: int = STREAM_ABOVE) -> bool:
    """True when a local file's header declares more than `above` samples (frames x channels); False
    when it cannot be read (the caller's reader then reports why), and for an object-store URI, which
    is fetched whole anyway (see `storage.readable`): asking would fetch it twice."""
    from .audio import special_file_problem

    path = os.fspath(path)
    if storage.is_uri(path) or special_file_problem(path):
        return False
    try:
        info = sf.info(storage.readable(path))
    except Exception:  # noqa: BLE001 - unreadable: not long; the real read says why
        return False
    return info.frames * info.channels > above


def stream(path: str | os.PathLike, sr: int | None = None, max_seconds: float | None = None,
           block: int = BLOCK) -> Iterator[np.ndarray]:
    """Mono float32 blocks of a file in [-1, 1], resampled to `sr` when given. Checks as `load_audio`
    does (regular file, plausible header, `max_seconds`, NaN/Inf, at least one sample), raising
    AudioError with a one-line reason, possibly after some blocks were yielded."""
    path = os.fspath(path)
    name = storage.name(path)
    with open_sound(path, max_seconds) as f:
        rs = Resampler(f.samplerate, sr, block) if sr is not None and sr != f.samplerate else None
        got = False
        for mono in read_blocks(f, name, block):
            got = True
            y = rs.push(mono) if rs is not None else mono
            if y.shape[0]:
                yield y
        if not got:
            raise AudioError(f"{name} has no samples")
        if rs is not None:
            tail = rs.flush()
            if tail.shape[0]:
                yield tail

"""The chunk loop of `Backend.reconstruct`, fed and drained as streams (for clips too long to hold).

Input blocks at the file's rate are resampled on the fly to the back-end's rate, cut into the
chunks `Backend._layout` gives for the whole clip, reconstructed and cross-faded exactly as
`Backend._chunked` does, and resampled back; output samples leave as soon as no later chunk can
touch them. Memory: one chunk of input, one of output, and the resamplers' margins.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Iterable, Iterator

import numpy as np

from manifests.audiostream import Resampler

if TYPE_CHECKING:
    from .base import Backend


def _resampled(blocks: Iterable[np.ndarray], sr_from: int, sr_to: int) -> Iterator[np.ndarray]:
    if sr_from == sr_to:
        yield from (np.asarray(b, np.float32) for b in blocks)
        return
    rs = Resampler(sr_from, sr_to)
    for b in blocks:
        y = rs.push(b)
        if y.shape[0]:
            yield y
    yield rs.flush()


class _Window:
    """The part of a stream from `start` on, filled from an iterator as needed."""

    def __init__(self, blocks: Iterator[np.ndarray]) -> None:
        self.blocks, self.buf, self.start = blocks, np.zeros(0, np.float32), 0

    def upto(self, end: int) -> bool:
        """Fill through absolute index `end`; False when the stream ends first."""
        parts = [self.buf]
        have = self.start + self.buf.shape[0]
        while have < end:
            b = next(self.blocks, None)
            if b is None:
                break
            parts.append(b)
            have += b.shape[0]
        self.buf = np.concatenate(parts) if len(parts) > 1 else self.buf
        return have >= end

    def take(self, a: int, b: int) -> np.ndarray:
        return self.buf[a - self.start:b - self.start]

    def drop_before(self, pos: int) -> None:
        cut = pos - self.start
        if cut > 0:
            self.buf, self.start = self.buf[cut:], pos


def chunk_stream(backend: Backend, blocks: Iterable[np.ndarray], sr: int, total: int,
                 seed: int) -> Iterator[np.ndarray]:
    """See `Backend.reconstruct_stream`."""
    inner_sr = backend.sample_rate
    inner_total = total if sr == inner_sr else math.ceil(total * inner_sr / sr)
    if inner_total < backend.min_samples():
        raise ValueError(f"clip of {total} samples at {sr} Hz is shorter than {backend.name}'s "
                         f"minimum of {backend.min_samples()} samples at {inner_sr} Hz")
    size, overlap, starts = backend._layout(inner_total)
    fade = np.linspace(0.0, 1.0, overlap, dtype=np.float32)
    src = _Window(_resampled(blocks, sr, inner_sr))
    out, out_start = np.zeros(0, np.float32), 0  # inner-rate output not yet final, from out_start on
    back = Resampler(inner_sr, sr) if sr != inner_sr else None
    sent = 0  # output samples at sr given out so far

    def emit(final: np.ndarray, at_sr: bool = False) -> Iterator[np.ndarray]:
        """Inner-rate samples that are final (or, `at_sr`, samples already at sr) -> output blocks."""
        nonlocal sent
        y = back.push(final) if back is not None and not at_sr else final
        y = y[:max(0, total - sent)]
        sent += y.shape[0]
        if y.shape[0]:
            yield np.clip(y, -1.0, 1.0)

    for k, start in enumerate(starts):
        if not src.upto(start + size):
            raise ValueError(f"the audio ended before the {total} samples its header declares")
        piece = backend._one(np.ascontiguousarray(src.take(start, start + size)), seed + k)
        if out_start + out.shape[0] < start + size:
            out = np.concatenate([out, np.zeros(start + size - out_start - out.shape[0], np.float32)])
        head = overlap if k > 0 else 0
        a = start - out_start
        out[a:a + head] = out[a:a + head] * (1.0 - fade[:head]) + piece[:head] * fade[:head]
        out[a + head:a + size] = piece[head:]
        final_end = starts[k + 1] if k + 1 < len(starts) else inner_total
        yield from emit(out[:final_end - out_start])
        out, out_start = out[final_end - out_start:], final_end
        src.drop_before(starts[k + 1] if k + 1 < len(starts) else inner_total)
    if src.upto(inner_total + 1):
        raise ValueError(f"the audio holds more than the {total} samples its header declares")
    if back is not None:
        yield from emit(back.flush(), at_sr=True)
    if sent < total:  # resampling round trip came out short: pad, as fit_length does
        yield np.zeros(total - sent, np.float32)

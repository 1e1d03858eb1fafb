"""One clip too long to hold in memory, end to end: the source streamed through a back-end into the
output file, with its hardness measured on the way (bounded memory whatever the clip's length).

The worker sends a clip here when its header declares more than `audiostream.STREAM_ABOVE`
samples; shorter clips take the in-memory path. Both give the same file and the same metrics up
to resampling round-off (exactly the same when the file is at the back-end's rate).
"""
from __future__ import annotations

from typing import Iterator

import numpy as np

from manifests import storage
from manifests.audio import open_sound, sound_writer
from manifests.audiostream import stream

from .backends import Backend
from .hardness import Hardness


class _Reference:
    """The source at its own rate, handed out in pieces as long as the output's."""

    def __init__(self, blocks: Iterator[np.ndarray]) -> None:
        self.blocks, self.buf = blocks, np.zeros(0, np.float32)

    def take(self, n: int) -> np.ndarray:
        parts, have = [self.buf], self.buf.shape[0]
        while have < n:
            b = next(self.blocks, None)
            if b is None:
                raise ValueError("the source ended before its reconstruction")
            parts.append(b)
            have += b.shape[0]
        buf = np.concatenate(parts) if len(parts) > 1 else self.buf
        self.buf = buf[n:]
        return buf[:n]


def reconstruct_long(backend: Backend, src: str, dst: str, seed: int) -> dict:
    """Reconstruct the clip at `src` into `dst` (FLAC, or by suffix; 16-bit, written atomically) in
    bounded memory. Returns {'snr_db', 'lsd_db'} of the output against the source (dB).
    Raises AudioError for an unreadable source, ValueError when it does not match its header."""
    with open_sound(src) as f:
        sr, total = int(f.samplerate), int(f.frames)
    fmt = {".flac": "FLAC", ".wav": "WAV", ".ogg": "OGG"}.get(storage.suffix(dst), "FLAC")
    hard = Hardness(sr)
    ref_blocks = stream(src)
    ref = _Reference(ref_blocks)

    def write(fh) -> None:
        with sound_writer(fh, sr, fmt) as out:
            for y in backend.reconstruct_stream(stream(src), sr, total, seed):
                out.write(y)
                hard.add(ref.take(y.shape[0]), y)

    try:
        storage.write_atomic(dst, write)
    finally:
        ref_blocks.close()
    return {"snr_db": hard.snr_db(), "lsd_db": hard.lsd_db()}

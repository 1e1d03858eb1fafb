"""The one protocol every reconstruction back-end follows.

A back-end knows `name`, `method` (codec | vocoder | diffusion), its internal `sample_rate`
and how to turn a waveform into its reconstruction. It knows nothing of files, manifests or
Ray: `reconstruct(wav, sr, seed)` takes and returns arrays. The base class does the parts
every back-end must get right the same way: resampling to the internal rate and back, exact
output length, float32 in [-1, 1], and refusing non-finite output.
"""
from __future__ import annotations

import dataclasses
import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Iterable, Iterator

import numpy as np
import torch

from manifests.audio import fit_length, resample
from manifests.errors import UsageError


@dataclasses.dataclass(frozen=True)
class NoParams:
    """A back-end without tunable parameters."""


class Backend(ABC):
    """Base class: subclasses set the class attributes and implement `_reconstruct`."""

    name: ClassVar[str]                  # registry key, e.g. "griffinlim"
    method: ClassVar[str]                # codec | vocoder | diffusion
    sample_rate: ClassVar[int]           # rate the model works at, Hz
    Params: ClassVar[type] = NoParams    # frozen dataclass of parameters, recorded in the manifest
    weights: ClassVar[str | None] = None  # where pretrained weights come from (hub id); None = weight-free
    description: ClassVar[str] = ""      # one line for `reconstruct list`
    bundled: ClassVar[Path | None] = None  # weights shipped in the package, the last resort offline
    chunk_s: ClassVar[float] = 30.0      # longer clips are processed in overlapping chunks (bounded memory)
    overlap_s: ClassVar[float] = 0.25    # cross-fade between chunks

    def __init__(self, params: dict[str, Any] | None = None, checkpoint: str | Path | None = None,
                 device: str = "cpu") -> None:
        self.params = parse_params(self.Params, params or {}, self.name)
        self.device = torch.device(device)
        self.checkpoint_sha256: str | None = None  # set by back-ends that load weights
        self.load(Path(checkpoint) if checkpoint else None)

    @classmethod
    def weights_location(cls, checkpoint: str | Path | None = None) -> str | None:
        """Where weights would come from without a download: "weight-free", "checkpoint",
        "store", "bundled", or None when they would have to be downloaded."""
        if cls.weights is None and cls.bundled is None:
            return "weight-free"
        from ..weights import local_path

        if checkpoint is not None:
            local_path(cls.name, checkpoint)  # raises if the path does not exist
            return "checkpoint"
        if local_path(cls.name) is not None:
            return "store"
        if cls.bundled is not None and Path(cls.bundled).is_dir():
            return "bundled"
        return None

    @classmethod
    def weights_sha256(cls, path: Path, params: Any) -> str | None:
        """The `checkpoint_sha256` that loading the weights at `path` with `params` records, computed without
        loading them (what a resume compares); None where it cannot be known without loading."""
        from ..weights import checkpoint_sha256

        return checkpoint_sha256(path)

    def load(self, checkpoint: Path | None) -> None:
        """Load weights (once per worker). Weight-free back-ends need nothing."""

    @abstractmethod
    def _reconstruct(self, wav: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """wav: (T,) float32 at self.sample_rate on self.device -> (T',) float32, T' close to T."""

    def params_json(self) -> str:
        """The parameters as canonical JSON, for the manifest's `params` column."""
        return json.dumps(dataclasses.asdict(self.params), sort_keys=True)

    @torch.inference_mode()
    def reconstruct(self, wav: np.ndarray, sr: int, seed: int = 0) -> np.ndarray:
        """wav: (T,) float32 in [-1, 1] at sr Hz -> (T,) float32 in [-1, 1] at sr Hz, same length.

        Deterministic for a given seed. Raises ValueError for input it cannot take
        (too short, non-finite) and RuntimeError if the model produces non-finite audio.
        """
        wav = np.asarray(wav, dtype=np.float32)
        if wav.ndim != 1:
            raise ValueError(f"expected mono audio of shape (T,), got {wav.shape}")
        if not np.isfinite(wav).all():
            raise ValueError("input audio contains NaN or Inf")
        inner = resample(wav, sr, self.sample_rate)
        if inner.shape[0] < self.min_samples():
            raise ValueError(f"clip of {wav.shape[0]} samples at {sr} Hz is shorter than {self.name}'s "
                             f"minimum of {self.min_samples()} samples at {self.sample_rate} Hz")
        out = self._chunked(inner, int(seed))
        out = np.asarray(fit_length(resample(out, self.sample_rate, sr), wav.shape[0]), np.float32)
        return np.clip(out, -1.0, 1.0, out=out if out.flags.writeable else None)  # in place: no second copy

    def min_samples(self) -> int:
        """Shortest input (at self.sample_rate) the model can take."""
        return 1

    def _one(self, wav: np.ndarray, seed: int) -> np.ndarray:
        generator = torch.Generator(device="cpu").manual_seed(seed)
        out = self._reconstruct(torch.from_numpy(np.ascontiguousarray(wav)).to(self.device), generator)
        out = out.detach().float().cpu().numpy().reshape(-1)
        if not np.isfinite(out).all():
            raise RuntimeError(f"{self.name} produced NaN or Inf audio")
        return fit_length(out, wav.shape[0])

    def _layout(self, total: int) -> tuple[int, int, list[int]]:
        """(chunk size, cross-fade, chunk starts) for `total` samples at self.sample_rate: the whole
        clip up to chunk_s, else equal chunks overlapping by overlap_s, the last one ending at the end."""
        size, overlap = int(self.chunk_s * self.sample_rate), int(self.overlap_s * self.sample_rate)
        if total <= size:
            return total, 0, [0]
        n = -(-(total - overlap) // (size - overlap))
        size = -(-(total + (n - 1) * overlap) // n)  # equal chunks, none shorter than the others
        return size, overlap, [min(k * (size - overlap), total - size) for k in range(n)]

    def _chunked(self, wav: np.ndarray, seed: int) -> np.ndarray:
        """Whole clip in one pass up to chunk_s; longer ones as equal chunks, linearly cross-faded."""
        total = wav.shape[0]
        size, overlap, starts = self._layout(total)
        if len(starts) == 1:
            return self._one(wav, seed)
        out = np.zeros(total, np.float32)
        fade = np.linspace(0.0, 1.0, overlap, dtype=np.float32)
        for k, start in enumerate(starts):
            piece = self._one(wav[start:start + size], seed + k)
            head = overlap if k > 0 else 0
            out[start:start + head] = out[start:start + head] * (1.0 - fade[:head]) + piece[:head] * fade[:head]
            out[start + head:start + size] = piece[head:]
        return out

    @torch.inference_mode()
    def reconstruct_stream(self, blocks: Iterable[np.ndarray], sr: int, total: int,
                           seed: int = 0) -> Iterator[np.ndarray]:
        """`reconstruct` for a clip too long to hold: (T,) float32 input at sr Hz as consecutive blocks,
        T = `total` samples in all -> output blocks at sr Hz, T samples in all, float32 in [-1, 1].
        Same chunks, seeds and cross-fades as `reconstruct`, so the output equals it up to resampling
        round-off; memory is a few chunks. Raises ValueError when the input holds more or fewer than
        `total` samples."""
        from .streaming import chunk_stream

        yield from chunk_stream(self, blocks, sr, total, int(seed))


def parse_params(cls: type, given: dict[str, Any], backend: str) -> Any:
    """Build the frozen Params dataclass from user strings/values, with clear errors."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(given) - set(fields))
    if unknown:
        allowed = ", ".join(fields) or "none"
        raise UsageError(f"{backend} has no parameter(s) {', '.join(unknown)} (allowed: {allowed})")
    values = {}
    for key, raw in given.items():
        default = fields[key].default
        typ = type(default) if default is not dataclasses.MISSING else str
        try:
            values[key] = typ(raw) if not isinstance(raw, typ) else raw
        except (TypeError, ValueError):
            raise UsageError(f"{backend} parameter {key}={raw!r} is not a {typ.__name__}") from None
    params = cls(**values)
    check = getattr(params, "check", None)
    if check is not None:
        try:
            check()
        except ValueError as e:
            raise UsageError(f"{backend}: {e}") from None
    return params

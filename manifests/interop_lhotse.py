"""The audio of one lhotse cut as a file the manifest can name (for `interop.read_cutset`).

lhotse is imported only by the functions that need it (the `interop` extra).
"""
from __future__ import annotations

import io
import os
from typing import Callable

from . import storage
from .clipfiles import write_once
from .errors import UsageError, first_line

INSTALL = 'lhotse CutSets need lhotse: pip install "hardspoof[interop]"'


def require_lhotse():
    """The lhotse module, or a UsageError naming the extra that installs it."""
    try:
        import lhotse
    except ImportError:
        raise UsageError(INSTALL) from None
    return lhotse


def _recordings(cut) -> list:
    """Every Recording a cut reads (a MixedCut: its tracks')."""
    if hasattr(cut, "tracks"):
        return [r for t in cut.tracks for r in _recordings(t.cut)]
    rec = getattr(cut, "recording", None)
    return [rec] if rec is not None else []


def _whole_file(cut) -> object | None:
    """The single AudioSource of a cut that is one whole, untransformed recording, or None."""
    recs = _recordings(cut)
    if hasattr(cut, "tracks") or len(recs) != 1:
        return None
    rec = recs[0]
    whole = (abs(cut.start) < 0.5 / rec.sampling_rate and abs(cut.duration - rec.duration) < 0.5 / rec.sampling_rate
             and not rec.transforms and len(rec.sources) == 1)
    channels_all = rec.num_channels == 1 or sorted(getattr(cut, "channel", []) or []) == sorted(rec.channel_ids)
    return rec.sources[0] if whole and channels_all else None


def _local(source: str, base: str) -> str | None:
    """A file source's absolute path: as lhotse resolves it (the current directory), else beside the cuts file."""
    for cand in (source, os.path.join(base, source)):
        if os.path.isfile(cand):
            return os.path.abspath(cand)
    return None


def cut_audio(cut, dest_for: Callable[[str], str], base: str) -> tuple[str | None, str | None]:
    """(location of the cut's audio, None) or (None, why not). A whole-recording file is used where it lies
    (or its object-store URI); anything else (a segment, some of a file's channels, several files, a mix, a
    transform such as resampling) is decoded by lhotse and written as 24-bit FLAC to `dest_for(".flac")`.
    A shell-command source is never run."""
    import soundfile as sf

    if any(s.type == "command" for r in _recordings(cut) for s in r.sources):
        return None, f"cut {cut.id}: its audio source is a shell command, which is not run"
    if not _recordings(cut):
        return None, f"cut {cut.id} has no recording"
    src = _whole_file(cut)
    if src is not None and src.type == "file":
        path = _local(src.source, base)
        return (path, None) if path else (None, f"cut {cut.id}: not a readable file: {src.source}")
    if src is not None and src.type == "url" and storage.is_uri(src.source) and src.source.split(":")[0] in ("s3", "gs"):
        return src.source, None

    try:
        samples = cut.load_audio()  # (channels, samples) float32
        buf = io.BytesIO()
        sf.write(buf, samples.T, int(cut.sampling_rate), format="FLAC", subtype="PCM_24")
        dest = dest_for(".flac")
        write_once(dest, buf.getvalue())
        return dest, None
    except UsageError:
        raise
    except Exception as e:  # noqa: BLE001 - lhotse's backends raise many types; this cut alone fails
        return None, f"cut {cut.id}: cannot load its audio: {first_line(e)}"

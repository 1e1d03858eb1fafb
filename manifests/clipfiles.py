"""Where the audio of an imported dataset or CutSet becomes files: a folder beside the source, one file per
clip named after its utt_id, written once. Shared by `interop` (datasets folders, CutSets) and
`interop_lhotse` (cuts lhotse must decode)."""
from __future__ import annotations

import hashlib
import posixpath
import re

from . import storage
from .audio import AUDIO_SUFFIXES
from .errors import UsageError, first_line

_SAFE = re.compile(r"^[^\x00-\x1f\\]+$")
_MAGIC = ((b"fLaC", ".flac"), (b"RIFF", ".wav"), (b"OggS", ".ogg"), (b"ID3", ".mp3"))


def default_audio_dir(source: str) -> str:
    """`<source>-audio` beside a dataset folder or cuts file (suffixes such as .jsonl.gz dropped)."""
    name = re.sub(r"(\.jsonl|\.json)?(\.gz)?$", "", storage.name(source)) or "corpus"
    return storage.join(storage.parent(storage.normalize(source)), f"{name}-audio")


def clip_path(audio_dir: str, utt_id: str, suffix: str) -> str:
    """Where a clip's bytes go: `audio_dir/<utt_id><suffix>` for a utt_id that is a safe relative path,
    else `audio_dir/_/<sha256 of the utt_id>` (an id with '..', a leading '/', control characters)."""
    parts = utt_id.split("/")
    safe = (_SAFE.match(utt_id) and not utt_id.startswith("/") and ".." not in parts and "" not in parts
            and all(len((p + suffix).encode()) <= 240 for p in parts))
    rel = utt_id + suffix if safe else f"_/{hashlib.sha256(utt_id.encode()).hexdigest()[:32]}{suffix}"
    return storage.join(audio_dir, rel)


def suffix_of(name: str | None, data: bytes) -> str:
    ext = posixpath.splitext(name or "")[1].lower()
    if ext in AUDIO_SUFFIXES:
        return ext
    return next((s for magic, s in _MAGIC if data.startswith(magic)), ".flac")


def write_once(dest: str, data: bytes) -> None:
    """Write `data` to `dest` atomically unless a file with these very bytes is already there."""
    if storage.kind(dest) == storage.FILE and storage.sha256(dest) == hashlib.sha256(data).hexdigest():
        return
    try:
        storage.write_atomic(dest, lambda fh: fh.write(data))
    except OSError as e:
        raise UsageError(f"cannot write the corpus audio to {storage.parent(dest)} ({e.strerror or first_line(e)}); "
                         "pass --audio-dir with a writable folder") from None

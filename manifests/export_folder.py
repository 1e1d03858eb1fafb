"""The folder an export writes into (shared by export_hf and export_lhotse): local, created, and never
holding the user's files that an `--overwrite` could remove."""
from __future__ import annotations

from pathlib import Path

from . import storage
from .errors import UsageError


def prepare_out(out: str, overwrite: bool, owned: tuple[str, ...]) -> Path:
    """The local export folder `out`, created; a non-empty one is refused unless `overwrite`, which removes
    only the files an export writes there (the glob patterns `owned`), nothing else of the user's."""
    if storage.is_uri(out):
        raise UsageError(f"--out {out}: an export is written to a local folder (upload it from there)")
    root = Path(storage.normalize(out))
    if root.exists() and not root.is_dir():
        raise UsageError(f"--out {out} is a file; give a folder")
    if root.is_dir() and any(root.iterdir()):
        if not overwrite:
            raise UsageError(f"--out {out} is not empty; give a new folder, or --overwrite to replace an earlier export")
        for pattern in owned:
            for old in root.glob(pattern):
                old.unlink()
    storage.check_writable(root)
    return root

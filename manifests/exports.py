"""`manifests export`: one entry point over the formats other tools read (export_hf, export_lhotse)."""
from __future__ import annotations

import os
from pathlib import Path

from . import storage
from .errors import UsageError

FORMATS = ("hf", "lhotse")


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


def export(manifest: str | os.PathLike, out: str | os.PathLike, fmt: str, **options) -> dict:
    """Export `manifest` to `out` in format `fmt` (hf | lhotse); returns the format's report."""
    if fmt == "hf":
        from .export_hf import export_hf

        return export_hf(manifest, out, **options)
    if fmt == "lhotse":
        from .export_lhotse import export_lhotse

        return export_lhotse(manifest, out, **{k: v for k, v in options.items() if k in ("allow_remote_paths", "overwrite")})
    raise UsageError(f"unknown export format {fmt!r}; allowed: {', '.join(FORMATS)}")

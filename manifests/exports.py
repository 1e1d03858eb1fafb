"""`manifests export`: one entry point over the formats other tools read (export_hf, export_lhotse)."""
from __future__ import annotations

import os

from .errors import UsageError

FORMATS = ("hf", "lhotse")


def export(manifest: str | os.PathLike, out: str | os.PathLike, fmt: str, **options) -> dict:
    """Export `manifest` to `out` in format `fmt` (hf | lhotse); returns the format's report."""
    if fmt == "hf":
        from .export_hf import export_hf

        return export_hf(manifest, out, **options)
    if fmt == "lhotse":
        from .export_lhotse import export_lhotse

        return export_lhotse(manifest, out, **{k: v for k, v in options.items() if k in ("allow_remote_paths", "overwrite")})
    raise UsageError(f"unknown export format {fmt!r}; allowed: {', '.join(FORMATS)}")

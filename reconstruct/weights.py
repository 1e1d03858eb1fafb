"""Where pretrained weights come from: --checkpoint PATH > local model store > hub (online only).

The model store is a folder of one sub-folder per back-end name (`HARDSPOOF_MODELS`, default
under the user cache dir). Nothing here runs at import time and nothing downloads when
HF_HUB_OFFLINE=1 is set.
"""
from __future__ import annotations

import hashlib
import importlib
import json
import os
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from manifests import storage
from manifests.errors import UsageError, first_line
from manifests.modelstore import offline, store_dir  # noqa: F401  (re-exported: weights.store_dir)


def not_available(name: str, source: str | None, missing: str | None = None) -> UsageError:
    """The one error for weights that cannot be found offline; `missing`, the back-end's own message when
    its library is not installed (its class's `missing_library()`), is the error instead: weights would not
    help. The caller, which holds the back-end's class, passes it (this module knows no back-ends)."""
    if missing:
        return UsageError(missing)
    where = f" (source: {source})" if source else ""
    return UsageError(
        f"weights for {name}{where} are not available offline; on an online machine run "
        f"`reconstruct models pull {name}` (store: {store_dir()}), or pass --checkpoint PATH"
    )


def local_path(name: str, checkpoint: str | os.PathLike | None = None) -> Path | None:
    """--checkpoint if given (must exist), else the store folder of `name` if present, else None."""
    if checkpoint is not None:
        path = Path(checkpoint).expanduser()
        if not path.exists():
            raise UsageError(f"--checkpoint {path} does not exist")
        return path
    path = store_dir() / name
    return path if path.is_dir() and any(path.iterdir()) else None


def resolve(name: str, source: str | None, checkpoint: str | os.PathLike | None = None,
            allow_patterns: list[str] | None = None) -> Path:
    """The folder (or file) holding `name`'s weights, downloading into the store only when online.

    `source` is a Hugging Face repo id or an http(s) URL of a single weights file;
    `allow_patterns` restricts a hub download to the files the back-end needs.
    """
    path = local_path(name, checkpoint)
    if path is not None:
        return path
    if offline() or not source:
        raise not_available(name, source)
    return pull(name, source, allow_patterns)


MANIFEST = "hardspoof-weights.json"  # written next to the weights by `pull`, read by `verify`


def pull(name: str, source: str, allow_patterns: list[str] | None = None, force: bool = False) -> Path:
    """Download `name`'s weights into the store and record every file's sha256; returns the folder.

    Downloads go to a temporary sibling folder renamed into place at the end, so an
    interrupted pull never leaves a half-filled store entry that `resolve` would accept.
    """
    target = store_dir() / name
    if target.is_dir() and (target / MANIFEST).is_file() and not force:
        return target
    partial = target.with_name(f".{name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        if source.startswith(("http://", "https://")):
            import torch.hub

            torch.hub.download_url_to_file(source, str(partial / source.rsplit("/", 1)[-1]), progress=True)
        else:
            from huggingface_hub import snapshot_download

            snapshot_download(source, local_dir=str(partial), allow_patterns=allow_patterns)
            shutil.rmtree(partial / ".cache", ignore_errors=True)  # hub bookkeeping, not weights
    except Exception as e:  # noqa: BLE001 - any download failure means "not available"
        shutil.rmtree(partial, ignore_errors=True)
        raise UsageError(f"could not download {source} for {name}: {first_line(e)}") from None
    write_manifest(partial, name, source)
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    return target


def _files(folder: Path) -> list[Path]:
    """Every regular file under folder except hidden ones and the manifest, sorted."""
    return sorted(f for f in folder.rglob("*") if f.is_file() and f.name != MANIFEST
                  and not any(part.startswith(".") for part in f.relative_to(folder).parts))


def write_manifest(folder: Path, name: str, source: str | None) -> Path:
    """Record sha256 and size of every file in folder as folder/hardspoof-weights.json."""
    files = {f.relative_to(folder).as_posix(): {"sha256": storage.sha256(str(f)), "bytes": f.stat().st_size}
             for f in _files(folder)}
    record = {"name": name, "source": source, "checkpoint_sha256": checkpoint_sha256(folder),
              "pulled_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "files": files}
    out = folder / MANIFEST
    out.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    return out


def verify(folder: str | os.PathLike) -> list[str]:
    """Problems found re-hashing folder against its manifest; [] means every file matches."""
    folder = Path(folder)
    manifest = folder / MANIFEST
    if not manifest.is_file():
        return [f"no {MANIFEST} in {folder} (staged by hand? re-run `reconstruct models pull`)"]
    try:
        files = json.loads(manifest.read_text())["files"]
    except (ValueError, KeyError) as e:
        return [f"{manifest} is not a valid weights manifest: {e}"]
    problems = []
    for rel, meta in sorted(files.items()):
        f = folder / rel
        if not f.is_file():
            problems.append(f"missing {rel}")
        elif storage.sha256(str(f)) != meta["sha256"]:
            problems.append(f"sha256 mismatch for {rel}")
    extra = sorted(set(f.relative_to(folder).as_posix() for f in _files(folder)) - set(files))
    problems += [f"unrecorded file {rel}" for rel in extra]
    return problems


def require(module: str, install: str) -> Any:
    """Import a heavy optional library inside a back-end, or say exactly what to install."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise UsageError(f"this back-end needs `{module}` ({e}); install it with `pip install {install}`") from None


_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".th")


def checkpoint_sha256(path: str | os.PathLike) -> str:
    """sha256 over a weights file, or over a folder's weight files (names + bytes, sorted)."""
    path = Path(path)
    files = [path] if path.is_file() else sorted(
        f for f in path.rglob("*") if f.is_file() and f.suffix in _WEIGHT_SUFFIXES)
    h = hashlib.sha256()
    for f in files:
        h.update(f.relative_to(path).as_posix().encode() if path.is_dir() else b"")
        with open(f, "rb") as fh:
            while block := fh.read(1 << 20):
                h.update(block)
    return h.hexdigest()

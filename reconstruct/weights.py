"""Where pretrained weights come from: --checkpoint PATH > local model store > hub (online only).

The model store is a folder of one sub-folder per back-end name (`HARDSPOOF_MODELS`, default
under the user cache dir). Nothing here runs at import time and nothing downloads when
HF_HUB_OFFLINE=1 is set.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

from manifests.errors import UsageError


def store_dir() -> Path:
    """The local model store folder."""
    env = os.environ.get("HARDSPOOF_MODELS")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("hardspoof")) / "models"


def offline() -> bool:
    """True when the user asked for no network (HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE)."""
    return any(os.environ.get(k, "").lower() in ("1", "true", "yes", "on")
               for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HARDSPOOF_OFFLINE"))


def not_available(name: str, source: str | None) -> UsageError:
    """The one error for weights that cannot be found offline."""
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


def resolve(name: str, source: str | None, checkpoint: str | os.PathLike | None = None) -> Path:
    """The folder (or file) holding `name`'s weights, downloading from the hub only when online."""
    path = local_path(name, checkpoint)
    if path is not None:
        return path
    if offline() or not source:
        raise not_available(name, source)
    from huggingface_hub import snapshot_download

    target = store_dir() / name
    try:
        snapshot_download(source, local_dir=str(target))
    except Exception as e:  # noqa: BLE001 - any hub failure means "not available"
        raise UsageError(f"could not download {source} for {name}: {str(e).splitlines()[0]}") from None
    return target


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

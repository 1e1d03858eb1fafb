"""The local model store and the offline switch, shared by `reconstruct` and `detector`.

The store is a folder of one sub-folder per model (`HARDSPOOF_MODELS`, default under the
user cache dir). Offline means HF_HUB_OFFLINE, TRANSFORMERS_OFFLINE or HARDSPOOF_OFFLINE is set.
"""
from __future__ import annotations

import os
from pathlib import Path


def store_dir() -> Path:
    """The local model store folder."""
    env = os.environ.get("HARDSPOOF_MODELS")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("hardspoof")) / "models"


def offline() -> bool:
    """True when the user asked for no network."""
    return any(os.environ.get(k, "").lower() in ("1", "true", "yes", "on")
               for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HARDSPOOF_OFFLINE"))

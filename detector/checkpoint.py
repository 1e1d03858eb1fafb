"""Checkpoint folder: config.json, model.safetensors, meta.json (threshold, manifest hashes, layer weights).

A frozen pretrained front-end is not copied into model.safetensors: it is re-resolved from the
source named in config.json (see Detector.saved_state).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from manifests.errors import UsageError, first_line

from .config import RunConfig
from .model.detector import Detector

FORMAT = "hardspoof-detector/1"


def _atomic_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True))
    os.replace(tmp, path)


def save_weights(path: Path, state: dict[str, torch.Tensor]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    save_file({k: v.detach().contiguous().cpu() for k, v in state.items()}, str(tmp))
    os.replace(tmp, path)


def save(folder: str | os.PathLike, model: Detector, cfg: RunConfig, meta: dict[str, Any]) -> Path:
    """Write the three files of a checkpoint into `folder` (created)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_weights(folder / "model.safetensors", model.saved_state())
    _atomic_json(folder / "config.json", {"format": FORMAT, **cfg.to_dict()})
    _atomic_json(folder / "meta.json", meta)
    return folder


def read_weights(path: str | os.PathLike, hint: str = "") -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file; a UsageError naming the file (and `hint`, what to do) when it is
    truncated or corrupt."""
    from safetensors import SafetensorError

    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as e:
        raise UsageError(f"{path} is not a readable safetensors file, truncated or corrupt ({first_line(e)}){hint}") from None


def read_state(path: str | os.PathLike, map_location=None, hint: str = "") -> dict:
    """A `torch.save`d dict, read with weights_only=True: tensors and plain values only. A pickle that would
    build other Python objects (and could run code) is refused, as is a truncated or corrupt file: a
    UsageError naming the file (and `hint`, what to do)."""
    import pickle

    try:
        saved = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        refused = next((ln for ln in lines if "GLOBAL" in ln), None)  # torch names the global it would import
        if refused is None:
            detail = next((ln for ln in lines if ln.startswith("Unsupported")), first_line(e))
            raise UsageError(f"{path} is truncated or corrupt ({detail}){hint}") from None
        raise UsageError(f"{path} is refused: it is a pickle with Python objects other than tensors and plain values, "
                         f"which could run code when loaded ({refused.rstrip('.')}; read with weights_only=True){hint}"
                         ) from None
    except Exception as e:  # noqa: BLE001 - a damaged zip/pickle raises RuntimeError, EOFError, KeyError, OSError...
        raise UsageError(f"{path} is truncated or corrupt ({type(e).__name__}: {first_line(e, 'no detail')}){hint}") from None
    if not isinstance(saved, dict):
        raise UsageError(f"{path} holds a {type(saved).__name__}, not the dict `detector train` saves{hint}")
    return saved


def _json(path: Path) -> dict:
    """A checkpoint's JSON file as a dict; UsageError naming it when it is not one."""
    try:
        d = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise UsageError(f"{path} is not readable JSON, truncated or corrupt ({first_line(e)})") from None
    if not isinstance(d, dict):
        raise UsageError(f"{path} holds a JSON {type(d).__name__}, not the object `detector train` writes")
    return d


def read_config(folder: str | os.PathLike) -> RunConfig:
    path = Path(folder) / "config.json"
    if not path.is_file():
        raise UsageError(f"--checkpoint {folder} has no config.json; give a folder written by `detector train`")
    d = _json(path)
    fmt = d.pop("format", None)
    if fmt != FORMAT:
        raise UsageError(f"checkpoint {folder} has format {fmt!r}; this toolkit reads {FORMAT!r}")
    return RunConfig.from_dict(d)


def load_state(model: Detector, state: dict[str, torch.Tensor], where: str) -> None:
    """Load `state` into `model`, raising a UsageError that names every mismatch."""
    own = model.state_dict()
    optional = {k for k in own if k.startswith("frontend.")} if set(model.saved_state()) != set(own) else set()
    missing = [k for k in own if k not in state and k not in optional]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in state
              if k in own and state[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        parts = [f"missing {missing[:3]}" if missing else "", f"unexpected {unexpected[:3]}" if unexpected else "",
                 f"shape mismatch {shapes[:3]}" if shapes else ""]
        raise UsageError(f"weights in {where} do not fit the model built from its config "
                         f"({'; '.join(p for p in parts if p)}); they come from a different config: "
                         "use the config.json saved next to them")
    model.load_state_dict(state, strict=False)


def weights_sha256(ckpt: str | os.PathLike) -> str:
    """sha256 of a detector's weights: an exported .onnx file, the model.safetensors of a checkpoint (or of
    a run's final/ checkpoint), or the authors' pinned file of `pretrained:NAME`. What `detector score` records
    and `manifests mine` stores as scored_by_sha256."""
    from manifests import storage

    from .model.pretrained import registry

    if registry.is_pretrained(ckpt):
        return registry.entry(str(ckpt)).sha256

    path = Path(ckpt)
    if path.is_dir():
        path = path / "final" / "model.safetensors" if (path / "final").is_dir() else path / "model.safetensors"
    if not path.is_file():
        raise UsageError(f"{ckpt}: no detector weights at {path} (a finished run, a checkpoint folder or an .onnx file)")
    return storage.sha256(str(path))


def load(folder: str | os.PathLike, cfg: RunConfig | None = None) -> tuple[Detector, RunConfig, dict[str, Any]]:
    """(model in eval mode, its config, meta) from a checkpoint folder (or a run folder holding final/).

    `cfg`, when given, must match the saved model config, else a UsageError names the differences.
    `pretrained:NAME` loads a published countermeasure from the model store (model/pretrained/registry.py).
    """
    from .model.pretrained import registry

    if registry.is_pretrained(folder):
        return registry.load(str(folder))
    folder = Path(folder)
    if (folder / "final" / "config.json").is_file():
        folder = folder / "final"
    elif (folder / "log.csv").is_file() or (folder / "last").is_dir():
        raise UsageError(f"{folder} is a training run that has not finished (no final/ checkpoint yet); "
                         "re-run the same `detector train` command to finish it")
    saved = read_config(folder)
    if cfg is not None and cfg.model != saved.model:
        diff = {k: (v, getattr(saved.model, k)) for k, v in cfg.model.__dict__.items() if getattr(saved.model, k) != v}
        raise UsageError(f"checkpoint {folder} was trained with a different model config: "
                         + ", ".join(f"{k}={b!r} (asked {a!r})" for k, (a, b) in diff.items()))
    model = Detector(saved.model)
    weights = folder / "model.safetensors"
    if not weights.is_file():
        raise UsageError(f"checkpoint {folder} has no model.safetensors")
    load_state(model, read_weights(weights), str(weights))
    meta_path = folder / "meta.json"
    meta = _json(meta_path) if meta_path.is_file() else {}
    from .training.distributed import device

    return model.to(device()).eval(), saved, meta

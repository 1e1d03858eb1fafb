"""A detector (PyTorch or ONNX) loaded, and (id, path) items scored into the rows of a scores file: what
`detector score` does in-process and what each Ray actor of `ray_executor` does per shard."""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from .. import checkpoint
from .metrics import posterior
from .onnx_export import is_onnx
from .windows import score_paths

CALIBRATED_COLUMNS = ("llr", "p_bonafide")


def load_detector(ckpt: str | os.PathLike):
    """(model, config, meta) of a checkpoint (run or final/ folder) or of an exported `.onnx` file, whose
    model is then an onnxruntime scorer that `score_paths` takes in place of the PyTorch one."""
    if is_onnx(ckpt):
        from . import onnx_export

        return onnx_export.load(ckpt)
    return checkpoint.load(ckpt)


def calibration_columns(cal: dict | None, scores: np.ndarray) -> tuple[list, list] | None:
    """(llr, p_bonafide) per score (None where not scored) under a checkpoint's calibration, or None."""
    if not cal:
        return None
    llr = cal["a"] * scores + cal["b"]
    post = posterior(np.nan_to_num(llr), 1 - cal["p_spoof"])
    ok = np.isfinite(scores)
    return ([float(v) if k else None for v, k in zip(llr, ok)], [float(v) if k else None for v, k in zip(post, ok)])


def score_rows(model, cfg, meta: dict, items: Sequence[tuple[str, str]], batch_size: int, progress: bool,
               max_seconds: float | None, refused: dict[int, str]) -> tuple[list[str], list[tuple], int]:
    """(columns, rows, failed) of the scores file for (id, path) items: score, llr and p_bonafide under a
    calibration, decision at the checkpoint threshold, error."""
    scores, errors, _ = score_paths(model, [p for _, p in items], cfg.data.crop, cfg.data.sample_rate,
                                    batch_size, progress, max_seconds=max_seconds, refused=refused,
                                    pad=cfg.data.pad == "repeat")
    thr = float(meta.get("threshold", 0.0))
    cal = meta.get("calibration")
    llr = calibration_columns(cal, scores)
    rows = [(uid, p, None if not np.isfinite(s) else float(s), *([] if llr is None else [v[i] for v in llr]),
             "" if not np.isfinite(s) else ("bonafide" if s >= thr else "spoof"), errors.get(i, ""))
            for i, ((uid, p), s) in enumerate(zip(items, scores))]
    return ["id", "path", "score", *CALIBRATED_COLUMNS[:2 if cal else 0], "decision", "error"], rows, len(errors)

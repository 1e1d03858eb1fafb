"""`detector calibrate`: turn a detector's scores into log-likelihood ratios, fitted on a manifest split.

The calibration is affine, llr = a * score + b, fitted by prior-weighted logistic regression (see
`metrics.fit_calibration`) at the effective prior of a stated operating point: by default ASVspoof 5's,
a spoof prior of 0.05 with costs C_miss 1, C_fa 10 (effective bona fide prior 0.655). It is stored under
"calibration" in the checkpoint's final/meta.json (or the metadata of an exported .onnx file), with that
operating point, so that `detector score` adds `llr` and `p_bonafide` (the posterior at the spoof prior)
and `detector eval` reports actDCF at its Bayes threshold and Cllr. The score keeps its direction: the
fitted slope must be positive (higher = more likely bona fide), else the split is refused.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from manifests import storage
from manifests.audio import MAX_SECONDS
from manifests.errors import UsageError

from ..training.data import BONAFIDE
from .evaluate import load_detector, score_manifest
from .metrics import C_FA, C_MISS, P_SPOOF, act_dcf, bayes_threshold, cllr, effective_prior, fit_calibration, min_dcf
from ..model.pretrained import registry
from .onnx_export import is_onnx

METHOD = "prior-weighted logistic regression (FoCal/BOSARIS train_llr_fusion), llr = a * score + b"


def fit(bona: np.ndarray, spoof: np.ndarray, p_spoof: float = P_SPOOF, c_miss: float = C_MISS,
        c_fa: float = C_FA) -> dict:
    """The calibration record of bona fide and spoof scores at an operating point (no I/O)."""
    prior = effective_prior(p_spoof, c_miss, c_fa)
    a, b = fit_calibration(bona, spoof, prior)
    if not a > 0:
        raise UsageError(f"calibration scores rank spoofs above bona fide (fitted slope {a:.3g}); a calibration "
                         "would reverse the score's direction: check the split, or retrain the detector")
    lb, ls = a * bona + b, a * spoof + b
    thr = bayes_threshold(p_spoof, c_miss, c_fa)
    return {"method": METHOD, "a": a, "b": b, "p_spoof": p_spoof, "c_miss": c_miss, "c_fa": c_fa,
            "prior_bonafide": prior, "llr_threshold": thr, "bonafide": int(bona.size), "spoof": int(spoof.size),
            "cllr": cllr(lb, ls), "act_dcf": act_dcf(lb, ls, thr, p_spoof, c_miss, c_fa),
            "min_dcf": min_dcf(bona, spoof, p_spoof, c_miss, c_fa)[0],
            "separable": bool(bona.min() > spoof.max())}  # no overlap: the slope is only held by regularisation


def _meta_file(ckpt: str | os.PathLike) -> Path:
    if registry.is_pretrained(ckpt):  # a published model's calibration lives beside its staged weights
        return registry.meta_file(str(ckpt))
    folder = Path(ckpt)
    return (folder / "final" if (folder / "final" / "config.json").is_file() else folder) / "meta.json"


def calibrate(ckpt: str | os.PathLike, manifest: str | os.PathLike, split: str | None = "dev",
              p_spoof: float = P_SPOOF, c_miss: float = C_MISS, c_fa: float = C_FA, batch_size: int = 16,
              progress: bool = True, allow_remote_paths: bool = False,
              max_seconds: float | None = MAX_SECONDS) -> dict:
    """Score `split` of `manifest`, fit the calibration and store it with the checkpoint; returns the record."""
    if not 0 < p_spoof < 1 or c_miss <= 0 or c_fa <= 0:
        raise UsageError(f"--p-spoof must be in (0, 1) and the costs positive; got {p_spoof}, {c_miss}, {c_fa}")
    model, cfg, meta = load_detector(ckpt)
    clips, scores, errors, _ = score_manifest(model, cfg, manifest, split, None, batch_size, progress,
                                              allow_remote_paths, max_seconds, desc="calibrate")
    labels = np.array([c.label for c in clips])
    ok = np.isfinite(scores)
    bona, spoof = scores[ok & (labels == BONAFIDE)], scores[ok & (labels != BONAFIDE)]
    if not (bona.size and spoof.size):
        raise UsageError(f"{manifest} (split {split}) has no readable clips of one class; calibration needs both")
    record = {**fit(bona, spoof, p_spoof, c_miss, c_fa), "manifest": storage.name(manifest), "split": split,
              "not_scored": len(errors)}
    meta = {**meta, "calibration": record}
    if is_onnx(ckpt):
        from .onnx_export import set_meta

        set_meta(ckpt, meta)
        record["stored_in"] = str(ckpt)
    else:
        path = _meta_file(ckpt)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(meta, indent=2, sort_keys=True))
        os.replace(tmp, path)
        record["stored_in"] = str(path)
    return record

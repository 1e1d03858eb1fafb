"""hardspoof detector: front-end -> layer aggregation -> AASIST/linear back-end, trained with CE or RACL.

Scores are bona fide logits: higher = more likely bona fide. The rooms: `model/` (front-ends, aggregation,
back-ends, the composed Detector), `training/` (data, sampler, augmentation, losses, loop, DDP), `scoring/`
(windows, eval/score, metrics, calibration, ONNX, Ray scoring), `experiment/` (config, runner, report).

Entry points, importable from here: `train`, `evaluate`, `score`, `inspect`, `calibrate`, `Detector`; the
checkpoint format is `detector.checkpoint`; and the `detector` CLI.
"""
from __future__ import annotations

import importlib

_PUBLIC = {  # name -> module holding it (imported on first use: `detector --help` stays torch-free)
    "train": "detector.training.loop", "evaluate": "detector.scoring.evaluate", "score": "detector.scoring.evaluate",
    "inspect": "detector.scoring.evaluate", "calibrate": "detector.scoring.calibration",
    "Detector": "detector.model.detector",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'detector' has no attribute {name!r}")

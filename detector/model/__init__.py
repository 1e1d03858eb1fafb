"""The detector model: front-end -> layer aggregation -> back-end -> head.

`frontends/` (xlsr, hf:, ge2e, lfcc, sinc, tiny), `aggregation.py`, `backends/` (AASIST, linear),
`detector.py` (the composed `Detector`).
"""
from .detector import Detector, Output

__all__ = ["Detector", "Output"]

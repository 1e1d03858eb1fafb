"""Detection metrics as pure functions of score arrays (higher score = more likely bona fide).

No I/O, printing or exits here.
"""
from __future__ import annotations

import numpy as np


def det_curve(bonafide: np.ndarray, spoof: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Miss and false-alarm rates at every candidate threshold (accept as bona fide if score >= t).

    Returns (frr, far, thresholds), thresholds ascending, the last one +inf (accept nothing).
    """
    bonafide, spoof = np.asarray(bonafide, np.float64), np.asarray(spoof, np.float64)
    if bonafide.size == 0 or spoof.size == 0:
        raise ValueError(f"need both classes: got {bonafide.size} bona fide and {spoof.size} spoof scores")
    if not (np.isfinite(bonafide).all() and np.isfinite(spoof).all()):
        raise ValueError("scores contain NaN or Inf")
    t = np.append(np.unique(np.concatenate([bonafide, spoof])), np.inf)
    b, s = np.sort(bonafide), np.sort(spoof)
    frr = np.searchsorted(b, t, side="left") / b.size          # bona fide below t: rejected
    far = 1.0 - np.searchsorted(s, t, side="left") / s.size    # spoof at or above t: accepted
    return frr, far, t


def eer(bonafide: np.ndarray, spoof: np.ndarray) -> tuple[float, float]:
    """Equal error rate (fraction, not %) and its threshold, linearly interpolated at the FRR/FAR crossing."""
    frr, far, t = det_curve(bonafide, spoof)
    k = int(np.argmax(frr >= far))  # first threshold where the curves have crossed (the last one always has)
    if k == 0:
        return float((frr[0] + far[0]) / 2), float(t[0])
    d0, d1 = far[k - 1] - frr[k - 1], far[k] - frr[k]
    a = d0 / (d0 - d1)
    rate = frr[k - 1] + a * (frr[k] - frr[k - 1])
    thr = t[k - 1] + a * (t[k] - t[k - 1]) if np.isfinite(t[k]) else t[k - 1]
    return float(rate), float(thr)


def min_dcf(bonafide: np.ndarray, spoof: np.ndarray, p_spoof: float = 0.05, c_miss: float = 1.0,
            c_fa: float = 10.0) -> tuple[float, float]:
    """Normalised minimum detection cost (ASVspoof 5 convention) and its threshold.

    DCF(t) = c_miss (1 - p_spoof) P_miss(t) + c_fa p_spoof P_fa(t), divided by the cost of the better
    trivial system min(c_miss (1 - p_spoof), c_fa p_spoof).
    """
    frr, far, t = det_curve(bonafide, spoof)
    dcf = c_miss * (1 - p_spoof) * frr + c_fa * p_spoof * far
    k = int(np.argmin(dcf))
    return float(dcf[k] / min(c_miss * (1 - p_spoof), c_fa * p_spoof)), float(t[k])


def grouped_eer(scores: np.ndarray, labels: np.ndarray, groups: np.ndarray) -> dict[str, float]:
    """EER (fraction) per spoof group: all bona fide scores against each group's spoof scores."""
    scores, labels, groups = np.asarray(scores), np.asarray(labels), np.asarray(groups, dtype=object)
    bona = scores[labels == 1]
    out = {}
    for g in sorted({str(x) for x in groups[labels == 0]}):
        sel = (labels == 0) & (groups.astype(str) == g)
        out[g] = eer(bona, scores[sel])[0] if bona.size else float("nan")
    return out

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


# The ASVspoof 5 operating point (its evaluation plan and package: Pspoof 0.05, Cmiss 1, Cfa 10), as in min_dcf.
P_SPOOF, C_MISS, C_FA = 0.05, 1.0, 10.0


def logit(p: float) -> float:
    return float(np.log(p) - np.log1p(-p))


def effective_prior(p_spoof: float = P_SPOOF, c_miss: float = C_MISS, c_fa: float = C_FA) -> float:
    """The bona fide prior of the equal-cost problem that has the same Bayes decisions as (p_spoof, c_miss,
    c_fa): c_miss (1 - p_spoof) / (c_miss (1 - p_spoof) + c_fa p_spoof); 0.655 at the ASVspoof 5 point."""
    return c_miss * (1 - p_spoof) / (c_miss * (1 - p_spoof) + c_fa * p_spoof)


def bayes_threshold(p_spoof: float = P_SPOOF, c_miss: float = C_MISS, c_fa: float = C_FA) -> float:
    """The LLR threshold of the Bayes decision (bona fide when llr >= it): log(c_fa p_spoof / (c_miss (1 -
    p_spoof))) = -logit(effective_prior); -0.642 at the ASVspoof 5 point (its package's -log(beta))."""
    return float(np.log(c_fa * p_spoof / (c_miss * (1 - p_spoof))))


def posterior(llr: np.ndarray, prior: float) -> np.ndarray:
    """P(bona fide | score) from an LLR (bona fide vs spoof) and the bona fide prior: sigmoid(llr + logit(prior))."""
    z = np.asarray(llr, np.float64) + logit(prior)
    return np.exp(-np.logaddexp(0.0, -z))


def fit_calibration(bonafide: np.ndarray, spoof: np.ndarray, prior: float = 0.5, l2: float = 1e-6,
                    max_iter: int = 100) -> tuple[float, float]:
    """Affine calibration llr = a * score + b by prior-weighted logistic regression (Brümmer's FoCal /
    BOSARIS `train_llr_fusion`): (a, b) minimise

        prior * mean(softplus(-(a s_bona + b + logit(prior)))) + (1 - prior) * mean(softplus(a s_spoof + b + logit(prior)))

    so each class weighs `prior` / (1 - prior) whatever its count, and a * s + b comes out as a log-likelihood
    ratio (bona fide vs spoof), best calibrated near the operating point whose effective prior is `prior`.
    Newton's method with step halving on standardised scores; `l2` (on the standardised slope) keeps the
    slope finite when the classes do not overlap. Returns (a, b); a > 0 keeps "higher = more likely bona fide"."""
    bona, spf = np.asarray(bonafide, np.float64), np.asarray(spoof, np.float64)
    if bona.size == 0 or spf.size == 0 or not (np.isfinite(bona).all() and np.isfinite(spf).all()):
        raise ValueError(f"need finite scores of both classes: got {bona.size} bona fide and {spf.size} spoof")
    if not 0 < prior < 1:
        raise ValueError(f"prior must be in (0, 1), got {prior}")
    both = np.concatenate([bona, spf])
    mu, sd = both.mean(), both.std() or 1.0
    x = np.concatenate([(bona - mu) / sd, (spf - mu) / sd])
    sign = np.concatenate([np.ones(bona.size), -np.ones(spf.size)])          # +1 bona fide, -1 spoof
    w = np.concatenate([np.full(bona.size, prior / bona.size), np.full(spf.size, (1 - prior) / spf.size)])
    offset = logit(prior)

    def objective(t: np.ndarray) -> float:
        return float(np.sum(w * np.logaddexp(0.0, -sign * (t[0] * x + t[1] + offset))) + 0.5 * l2 * t[0] ** 2)

    theta = np.zeros(2)
    for _ in range(max_iter):
        z = sign * (theta[0] * x + theta[1] + offset)
        p = np.exp(-np.logaddexp(0.0, z))                                     # sigmoid(-z): each term's slope
        g = -np.array([np.sum(w * p * sign * x), np.sum(w * p * sign)]) + np.array([l2 * theta[0], 0.0])
        h = w * p * (1 - p)
        hess = np.array([[np.sum(h * x * x) + l2, np.sum(h * x)], [np.sum(h * x), np.sum(h) + 1e-12]])
        step = np.linalg.solve(hess, g)
        f0, t = objective(theta), 1.0
        while objective(theta - t * step) > f0 and t > 1e-8:
            t /= 2
        theta = theta - t * step
        if np.abs(t * step).max() < 1e-10:
            break
    a = theta[0] / sd
    return float(a), float(theta[1] - a * mu)


def cllr(bonafide_llr: np.ndarray, spoof_llr: np.ndarray) -> float:
    """Log-likelihood-ratio cost in bits (ASVspoof 5's calculate_CLLR): 0 perfect, 1 an uninformative
    LLR of 0, above 1 miscalibrated: 0.5 (mean log2(1 + e^-llr) over bona fide + mean log2(1 + e^llr) over spoof)."""
    bona, spf = np.asarray(bonafide_llr, np.float64), np.asarray(spoof_llr, np.float64)
    if bona.size == 0 or spf.size == 0:
        raise ValueError(f"need both classes: got {bona.size} bona fide and {spf.size} spoof LLRs")
    return float(0.5 * (np.mean(np.logaddexp(0.0, -bona)) + np.mean(np.logaddexp(0.0, spf))) / np.log(2))


def act_dcf(bonafide: np.ndarray, spoof: np.ndarray, threshold: float, p_spoof: float = P_SPOOF,
            c_miss: float = C_MISS, c_fa: float = C_FA) -> float:
    """Normalised actual DCF of the decisions `score >= threshold` = bona fide (ASVspoof 5's compute_actDCF
    with its threshold -log(beta) = bayes_threshold() when the scores are calibrated LLRs)."""
    bona, spf = np.asarray(bonafide, np.float64), np.asarray(spoof, np.float64)
    if bona.size == 0 or spf.size == 0:
        raise ValueError(f"need both classes: got {bona.size} bona fide and {spf.size} spoof scores")
    miss, fa = np.mean(bona < threshold), np.mean(spf >= threshold)
    return float((c_miss * (1 - p_spoof) * miss + c_fa * p_spoof * fa) / min(c_miss * (1 - p_spoof), c_fa * p_spoof))

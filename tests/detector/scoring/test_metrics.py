import numpy as np
import pytest

from detector.scoring.metrics import det_curve, eer, grouped_eer, min_dcf


def test_eer_perfectly_separated_is_zero():
    rate, thr = eer(np.array([2.0, 3.0]), np.array([0.0, 1.0]))
    assert rate == 0.0 and 1.0 < thr <= 2.0


def test_eer_identical_scores_is_half():
    assert eer(np.full(5, 0.3), np.full(7, 0.3))[0] == pytest.approx(0.5)


def test_eer_known_crossing():
    # at t=2: one of four bona fide (1) rejected, one of four spoofs (5) accepted -> 25 %
    assert eer(np.array([1.0, 2.0, 3.0, 4.0]), np.array([0.0, 0.5, 1.5, 5.0]))[0] == pytest.approx(0.25)


def test_eer_interpolates_between_points():
    # 1 bona fide vs 2 spoofs, fully inverted: FRR 0->1 while FAR 1->0.5->0
    rate, _ = eer(np.array([0.0]), np.array([1.0, 2.0]))
    assert 0.5 <= rate <= 1.0


def test_min_dcf_known_values():
    assert min_dcf(np.array([2.0, 3.0]), np.array([0.0, 1.0]))[0] == 0.0
    assert min_dcf(np.full(4, 1.0), np.full(4, 1.0))[0] == pytest.approx(1.0)  # no better than a trivial system


def test_det_curve_monotone_and_errors():
    frr, far, t = det_curve(np.random.default_rng(0).normal(1, 1, 50), np.random.default_rng(1).normal(0, 1, 50))
    assert np.all(np.diff(frr) >= 0) and np.all(np.diff(far) <= 0) and np.isinf(t[-1])
    with pytest.raises(ValueError, match="both classes"):
        eer(np.array([]), np.array([1.0]))
    with pytest.raises(ValueError, match="NaN"):
        eer(np.array([np.nan]), np.array([1.0]))


def test_grouped_eer():
    scores = np.array([2.0, 3.0, 0.0, 2.5])
    labels = np.array([1, 1, 0, 0])
    out = grouped_eer(scores, labels, np.array(["-", "-", "A01", "A02"]))
    assert out["A01"] == 0.0 and out["A02"] == pytest.approx(0.5)

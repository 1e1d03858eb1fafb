"""Calibration to LLRs and the ASVspoof 5 metrics next to EER and minDCF: pure functions, then the CLI."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from detector import checkpoint
from detector.scoring.calibration import fit
from detector.cli import main
from detector.scoring.metrics import (act_dcf, bayes_threshold, cllr, effective_prior, fit_calibration, min_dcf, posterior)
from detector.model.detector import Detector
from manifests.errors import UsageError

from ..conftest import tiny_config


def gaussians(n_bona: int, n_spoof: int, mu_bona=2.0, mu_spoof=-1.0, sigma=1.5, seed=0):
    """Scores of two equal-variance Gaussians and their true LLR: log N(s; mu_b, sigma) / N(s; mu_s, sigma)
    = a s + b with a = (mu_b - mu_s) / sigma^2, b = -(mu_b^2 - mu_s^2) / (2 sigma^2)."""
    rng = np.random.default_rng(seed)
    a = (mu_bona - mu_spoof) / sigma ** 2
    b = -(mu_bona ** 2 - mu_spoof ** 2) / (2 * sigma ** 2)
    return rng.normal(mu_bona, sigma, n_bona), rng.normal(mu_spoof, sigma, n_spoof), a, b


@pytest.mark.parametrize("prior", [0.5, effective_prior(), 0.1])
@pytest.mark.parametrize("counts", [(20000, 20000), (3000, 30000)])
def test_recovers_the_known_llr(prior, counts):
    bona, spoof, a, b = gaussians(*counts)
    fa, fb = fit_calibration(bona, spoof, prior)
    assert fa == pytest.approx(a, rel=0.05) and fb == pytest.approx(b, abs=0.08)
    grid = np.linspace(-3, 4, 15)  # the fitted LLR over the bulk of both classes
    assert np.abs((fa * grid + fb) - (a * grid + b)).max() < 0.25


def test_recovers_the_llr_of_raw_scores_on_another_scale():
    """Calibration undoes an affine scale: logits = 5 * llr - 3 calibrate back to the LLR."""
    bona, spoof, a, b = gaussians(20000, 20000, seed=1)
    fa, fb = fit_calibration(5 * bona - 3, 5 * spoof - 3, 0.5)
    assert fa * 5 == pytest.approx(a, rel=0.05) and fb - 3 * fa == pytest.approx(b, abs=0.08)


def test_cllr_is_lowest_for_calibrated_llrs():
    bona, spoof, a, b = gaussians(20000, 20000, seed=2)
    lb, ls = a * bona + b, a * spoof + b
    good = cllr(lb, ls)
    assert good < 1.0
    for bad in ((3 * lb, 3 * ls), (0.3 * lb, 0.3 * ls), (lb + 2, ls + 2), (lb - 2, ls - 2)):
        assert cllr(*bad) > good + 0.05
    assert cllr(np.zeros(5), np.zeros(7)) == pytest.approx(1.0)  # an LLR of 0 says nothing: 1 bit
    assert cllr(np.full(3, 40.0), np.full(3, -40.0)) < 1e-12


def test_operating_point_constants():
    assert effective_prior() == pytest.approx(0.95 / 1.45)
    assert bayes_threshold() == pytest.approx(-np.log(1.9))  # ASVspoof 5's -log(beta), beta = 0.95 / 0.5
    assert posterior(np.array([0.0]), 0.95)[0] == pytest.approx(0.95)
    bona, spoof, a, b = gaussians(20000, 20000, seed=3)
    lb, ls = a * bona + b, a * spoof + b
    assert act_dcf(lb, ls, bayes_threshold()) == pytest.approx(min_dcf(lb, ls)[0], abs=0.02)  # Bayes decisions


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-20, 20), min_size=1, max_size=30), st.lists(st.floats(-20, 20), min_size=1, max_size=30),
       st.floats(-25, 25), st.floats(0.01, 0.99))
def test_act_dcf_never_below_min_dcf(bona, spoof, threshold, p_spoof):
    bona, spoof = np.array(bona), np.array(spoof)
    assert act_dcf(bona, spoof, threshold, p_spoof) >= min_dcf(bona, spoof, p_spoof)[0] - 1e-12


def test_a_reversed_detector_is_refused():
    bona, spoof, _, _ = gaussians(500, 500, seed=4)
    with pytest.raises(UsageError, match="reverse"):
        fit(-bona, -spoof)
    record = fit(bona, spoof)
    assert record["a"] > 0 and record["p_spoof"] == 0.05 and record["prior_bonafide"] == pytest.approx(effective_prior())


def test_calibrate_then_score_and_eval(manifest, tmp_path):
    cfg = tiny_config()
    run = tmp_path / "run"
    torch.manual_seed(0)
    model = Detector(cfg.model)
    checkpoint.save(run / "final", model, cfg, {"threshold": 0.0})
    invoke = lambda *a: CliRunner().invoke(main, [str(x) for x in a])  # noqa: E731
    r = invoke("eval", "--checkpoint", run, "--manifest", manifest, "--no-progress")
    assert r.exit_code == 0 and "actDCF" in r.output and "not calibrated" in r.output and "Cllr" in r.output, r.output
    r = invoke("calibrate", "--checkpoint", run, "--manifest", manifest, "--split", "train", "--no-progress")
    if r.exit_code == 2:  # this random detector ranks the split backwards: it must say so and store nothing ...
        assert "reverse" in r.output and "calibration" not in json.loads((run / "final/meta.json").read_text())
        with torch.no_grad():  # ... and the same detector with its logit negated ranks it the right way round
            model.head.weight.neg_()
            model.head.bias.neg_()
        checkpoint.save(run / "final", model, cfg, {"threshold": 0.0})
        r = invoke("calibrate", "--checkpoint", run, "--manifest", manifest, "--split", "train", "--no-progress")
    assert r.exit_code == 0 and "llr = " in r.output, r.output
    cal = json.loads((run / "final/meta.json").read_text())["calibration"]
    assert cal["a"] > 0 and cal["p_spoof"] == 0.05 and cal["split"] == "train" and cal["llr_threshold"] < 0
    r = invoke("score", "--checkpoint", run, "--input", manifest, "--out", tmp_path / "s.tsv", "--no-progress")
    assert r.exit_code == 0
    lines = (tmp_path / "s.tsv").read_text().splitlines()
    assert "llr = " in lines[0] and "p_bonafide" in lines[0]
    rows = list(csv.DictReader(lines[1:], delimiter="\t"))
    for row in rows:
        llr = cal["a"] * float(row["score"]) + cal["b"]
        tol = 1e-6 * (1 + abs(cal["a"]))  # the score is printed to 6 decimals
        assert float(row["llr"]) == pytest.approx(llr, abs=tol)
        assert float(row["p_bonafide"]) == pytest.approx(posterior(np.array([llr]), 0.95)[0], abs=tol)
    order = np.argsort([float(r["score"]) for r in rows])
    assert np.all(np.diff([float(rows[i]["llr"]) for i in order]) >= 0)  # higher score, higher LLR
    r = invoke("eval", "--checkpoint", run, "--manifest", manifest, "--no-progress")
    assert r.exit_code == 0 and "calibrated LLR >=" in r.output and "not calibrated" not in r.output, r.output

import math

import pytest
import torch

from detector.training.losses import (classification, cross_entropy, enhancement_mask, pair_contrastive, racl,
                             within_class_variance)

EMB = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
LAB = torch.tensor([1.0, 0.0, 1.0])


def test_pair_contrastive_hand_computed():
    # pairs: (0,1) diff d=1 -> (1.5-1)^2; (0,2) same d=1 -> 1; (1,2) diff d=sqrt2 -> (1.5-sqrt2)^2
    expected = (0.25 + 1.0 + (1.5 - math.sqrt(2)) ** 2) / 3
    assert pair_contrastive(EMB, LAB, margin=1.5).item() == pytest.approx(expected, rel=1e-5)


def test_enhancement_term_only_uses_own_reconstruction_pairs():
    mask = enhancement_mask(["a", "a_rec", "b"], ["a", "a", "b"], ["original", "reconstruction", "original"], LAB)
    assert mask.tolist() == [[False, True, False], [False, False, False], [False, False, False]]
    assert pair_contrastive(EMB, LAB, 1.5, mask).item() == pytest.approx(0.25)


def test_enhancement_term_zero_without_pairs_and_grads_finite():
    emb = torch.zeros(3, 2, requires_grad=True)  # coincident embeddings: d = 0 must not give NaN grads
    mask = torch.zeros(3, 3, dtype=torch.bool)
    enh = pair_contrastive(emb, LAB, 1.0, mask)
    assert enh.item() == 0.0
    total = racl(torch.zeros(3, requires_grad=True), emb, LAB, mask)["total"]
    total.backward()
    assert torch.isfinite(emb.grad).all()


def test_within_class_variance_hand_computed():
    # class 1: e0, e2 around (0, .5): 0.25 each -> 0.25; class 0: one point -> 0; mean over classes 0.125
    assert within_class_variance(EMB, LAB).item() == pytest.approx(0.125)


def test_racl_combines_terms_with_paper_weights():
    logit = torch.tensor([2.0, -1.0, 0.5])
    mask = enhancement_mask(["a", "a_rec", "b"], ["a", "a", "b"], ["original", "reconstruction", "original"], LAB)
    t = racl(logit, EMB, LAB, mask, margin=1.5)
    cls = classification(logit, LAB)
    expected = 0.3 * cls + 0.6 * t["std"] + 0.1 * t["enh"] + 0.3 * t["reg"]
    assert t["total"].item() == pytest.approx(expected.item())
    assert t["cls"].item() == pytest.approx(
        -(math.log(1 / (1 + math.exp(-2))) + math.log(1 - 1 / (1 + math.exp(1))) + math.log(1 / (1 + math.exp(-0.5)))) / 3)
    assert set(cross_entropy(logit, LAB)) == {"cls", "total"}

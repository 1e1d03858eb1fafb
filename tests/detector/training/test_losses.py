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


def test_std_pull_bonafide_leaves_spoof_pairs_out():
    # 0, 1 bona fide at distance 1; 2, 3 spoofs at distance 1; different-label pairs beyond the margin 0.5
    emb = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 5.0], [1.0, 5.0]])
    lab = torch.tensor([1.0, 1.0, 0.0, 0.0])
    # pairs: (0,1) same 1.0; (2,3) same 1.0; four different-label pairs: 0 each
    assert pair_contrastive(emb, lab, 0.5).item() == pytest.approx(2.0 / 6)
    assert pair_contrastive(emb, lab, 0.5, pull_spoofs=False).item() == pytest.approx(1.0 / 5)
    mask = torch.zeros(4, 4, dtype=torch.bool)
    t_all, t_bona = (racl(torch.zeros(4), emb, lab, mask, margin=0.5, std_pull=p) for p in ("all", "bonafide"))
    assert t_all["std"].item() == pytest.approx(2.0 / 6) and t_bona["std"].item() == pytest.approx(1.0 / 5)
    assert t_bona["reg"].item() == pytest.approx(t_all["reg"].item())  # only L_std changes


def test_racl_weights_are_zero_during_warmup_then_configured():
    from detector.config import TrainConfig
    from detector.training.losses import racl_weights

    cfg = TrainConfig(warmup_epochs=2, alpha=0.5, beta=0.2, gamma=0.1)
    assert [racl_weights(cfg, e) for e in range(4)] == [(0.0, 0.0, 0.0)] * 2 + [(0.5, 0.2, 0.1)] * 2
    assert racl_weights(TrainConfig(), 0) == (0.6, 0.1, 0.3)  # no warm-up by default
    logit = torch.tensor([2.0, -1.0, 0.5])
    mask = torch.zeros(3, 3, dtype=torch.bool)
    warm = racl(logit, EMB, LAB, mask, *racl_weights(cfg, 0), margin=1.5)
    assert warm["total"].item() == pytest.approx(classification(logit, LAB).item())  # CE alone, weight 1
    assert warm["std"].item() > 0  # the terms are still computed (and logged)


def test_one_class_softmax_hand_computed():
    from detector.training.losses import one_class_softmax

    score = torch.tensor([0.95, 0.5, 0.1, 0.6])
    lab = torch.tensor([1.0, 1.0, 0.0, 0.0])
    sp = lambda x: math.log1p(math.exp(x))  # noqa: E731
    want = (sp(20 * (0.9 - 0.95)) + sp(20 * (0.9 - 0.5)) + sp(20 * (0.1 - 0.2)) + sp(20 * (0.6 - 0.2))) / 4
    t = one_class_softmax(score, lab, m_real=0.9, m_fake=0.2, scale=20.0)
    assert set(t) == {"oc", "total"} and t["total"].item() == pytest.approx(want, rel=1e-6)
    # only bona fide below m_real and spoofs above m_fake cost much: the two well-placed clips cost < 0.4 each
    per = [one_class_softmax(score[i:i + 1], lab[i:i + 1])["total"].item() for i in range(4)]
    assert per[0] < 0.4 and per[2] < 0.4 and per[1] > 7 and per[3] > 7


def test_one_class_gradient_pulls_bona_fide_to_the_centre_and_pushes_spoofs_away():
    from detector.model.heads import OneClassHead
    from detector.training.losses import one_class_softmax

    torch.manual_seed(0)
    head = OneClassHead(4)
    emb = torch.randn(6, 4, requires_grad=True)
    lab = torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0, 0.0])
    before = head(emb).squeeze(-1).detach()
    assert (before.abs() <= 1 + 1e-6).all()  # a cosine
    one_class_softmax(head(emb).squeeze(-1), lab)["total"].backward()
    with torch.no_grad():
        after = head(emb - 0.01 * emb.grad).squeeze(-1)
    assert (after[:3] > before[:3]).all() and (after[3:] < before[3:]).all()

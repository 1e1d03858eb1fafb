import pytest
import torch

from detector.model.backends import AASIST
from detector.model.aggregation import build_aggregator
from detector.config import ModelConfig
from detector.model.detector import Detector
from manifests.errors import UsageError


@pytest.mark.parametrize("name", ["attn", "weighted", "last"])
def test_aggregation_weights_sum_to_one(name):
    h = torch.randn(3, 5, 7, 8)
    out, w = build_aggregator(name, 5, 8)(h)
    assert out.shape == (3, 7, 8) and w.shape == (3, 5)
    assert torch.allclose(w.sum(-1), torch.ones(3))
    if name == "last":
        assert torch.equal(out, h[:, -1])


@pytest.mark.parametrize("name", ["attn", "weighted"])
def test_no_layer_dominates_by_its_norm(name):
    """Each layer is normalised before pooling and summing: scaling one layer by 1000 (SSL hidden-state norms
    grow by orders of magnitude with depth) changes neither the weights nor the aggregate."""
    torch.manual_seed(0)
    agg = build_aggregator(name, 4, 8)
    h = torch.randn(2, 4, 6, 8)
    loud = h.clone()
    loud[:, 3] *= 1000.0
    (a, wa), (b, wb) = agg(h), agg(loud)
    assert torch.allclose(wa, wb, atol=1e-5) and torch.allclose(a, b, atol=1e-4)


def test_attn_conv_runs_along_the_layer_axis():
    """A layer's score depends on its neighbours (kernel 3 across layers), not on far layers or on time order."""
    torch.manual_seed(0)
    agg = build_aggregator("attn", 6, 8)
    h = torch.randn(1, 6, 5, 8)
    def scores(x):  # the conv's input: normalised layers pooled over time, layers as the sequence axis
        return agg.conv(torch.nn.functional.layer_norm(x, (8,)).mean(2).transpose(1, 2)).squeeze(1)

    far = h.clone()
    far[:, 5] = torch.randn(5, 8)
    s0, s1 = scores(h), scores(far)
    assert torch.allclose(s0[:, :4], s1[:, :4]) and not torch.allclose(s0[:, 4:], s1[:, 4:])
    _, w = agg(h)
    _, w_shuffled_time = agg(h[:, :, torch.randperm(5)])
    assert torch.allclose(w, w_shuffled_time, atol=1e-6)


def test_unknown_aggregation_lists_choices():
    with pytest.raises(UsageError, match="attn, weighted, last"):
        build_aggregator("mean", 3, 4)


@pytest.mark.parametrize("frames", [1, 4, 25, 101])
def test_aasist_output_shapes(frames):
    net = AASIST(dim=12, proj_dim=24, gat_dim=8).eval()
    emb = net.embed(torch.randn(2, frames, 12))
    assert emb.shape == (2, 40) and torch.isfinite(emb).all()


@pytest.mark.parametrize("backend", ["aasist", "linear"])
def test_detector_shapes(backend):
    m = Detector(ModelConfig(frontend="tiny", backend=backend, tiny_hidden=16, proj_dim=16, gat_dim=8, embed_dim=16))
    out = m(torch.randn(2, 4000))
    assert out.logit.shape == (2,) and out.layer_weights.shape == (2, 3)
    assert torch.allclose(out.embedding.norm(dim=-1), torch.ones(2))
    assert m.score(torch.randn(1, 4000)).shape == (1,)

import pytest
import torch

from detector.aasist import AASIST
from detector.aggregation import build_aggregator
from detector.config import ModelConfig
from detector.model import Detector
from manifests.errors import UsageError


@pytest.mark.parametrize("name", ["attn", "weighted", "last"])
def test_aggregation_weights_sum_to_one(name):
    h = torch.randn(3, 5, 7, 8)
    out, w = build_aggregator(name, 5, 8)(h)
    assert out.shape == (3, 7, 8) and w.shape == (3, 5)
    assert torch.allclose(w.sum(-1), torch.ones(3))
    if name == "last":
        assert torch.equal(out, h[:, -1])


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

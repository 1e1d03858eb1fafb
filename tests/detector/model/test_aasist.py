"""AASIST back-end sizes: parameter counts against their provenance, shapes, dropout, gradients, map input."""
import re

import pytest
import torch

from detector.model.backends import AASIST
from detector.model.backends.aasist import AASISTSmall, count_parameters, unflatten_map
from detector.model.backends.aasist_full import AASISTFull, from_reference_state_dict
from manifests.errors import UsageError

# Reference SSL-AASIST back-end: TakHemlata/SSL_Anti-spoofing, commit 77d1edb109e497754d401ccf6500dfe377489b56
# (HEAD 4acaa61 has the same model.py), file model.py, class Model(args, device). Built with fairseq stubbed as
# an empty module and SSLModel replaced by a parameter-free stand-in with out_dim = 1024 (XLS-R 300M), then
# sum(p.numel() for p in Model.parameters()) minus Model.out_layer (Linear(160, 2): 322) = 446,920. That counts
# LL 131,200; first_bn 2; first_bn1 128; encoder 211,072; attention 16,832; pos_S 2,688; master1/2 64 + 64;
# GAT_layer_S/T 12,672 each; HtrgGAT_layer_ST11/21 20,992 each; ST12/22 8,640 each; the six GraphPools
# 65 + 65 + 4 * 33. Tak et al. 2022 publish no parameter figure for the back-end alone.
REFERENCE_FULL_PARAMS = 446_920
# AASIST(1024) (defaults proj_dim=128, gat_dim=32) from the unmodified detector/aasist.py of commit bd9057a,
# counted with sum(p.numel() for p in model.parameters()) before `size` was added.
SMALL_PARAMS = 217_962


def test_full_matches_reference_parameter_count():
    net = AASIST(1024, size="full")
    assert isinstance(net, AASISTFull) and net.embed_dim == 160
    assert count_parameters(net) == REFERENCE_FULL_PARAMS


def test_small_is_unchanged():
    net = AASIST(1024, 128, 32, 0.1)
    assert isinstance(net, AASISTSmall) and net.embed_dim == 160
    assert count_parameters(net) == SMALL_PARAMS
    keys = net.state_dict()
    assert {"proj.weight", "pos_s", "master", "encoder.0.body.0.weight", "branches.1.l2.att_w"} <= set(keys)


@pytest.mark.parametrize("frames", [50, 201, 333])
@pytest.mark.parametrize("size,embed_dim", [("full", 160), ("small", 40)])
def test_output_shapes(size, embed_dim, frames):
    net = AASIST(48, gat_dim=8, size=size).eval()
    emb = net.embed(torch.randn(2, frames, 48))
    assert emb.shape == (2, embed_dim) == (2, net.embed_dim) and torch.isfinite(emb).all()


@pytest.mark.parametrize("size", ["full", "small"])
def test_dropout_only_in_train_mode(size):
    net, x = AASIST(16, size=size), torch.randn(2, 50, 16)
    net.eval()
    assert torch.equal(net.embed(x), net.embed(x))
    net.train()
    assert not torch.equal(net.embed(x), net.embed(x))


def test_full_gradients_reach_the_encoder_and_every_trainable_parameter():
    net = AASIST(16, size="full").train()
    net.embed(torch.randn(3, 50, 16)).square().sum().backward()
    assert net.LL.weight.grad.abs().sum() > 0
    assert all(b.conv1.weight.grad.abs().sum() > 0 for b in net.encoder)
    # no unused trainable parameter: DDP without find_unused_parameters needs this
    assert [n for n, p in net.named_parameters() if p.requires_grad and p.grad is None] == []
    # the reference's bn1 is built (for its count and checkpoints) but never used, hence frozen
    assert not net.encoder[1].bn1.weight.requires_grad


def test_map_layout_is_channel_major_per_frame():
    x = torch.randn(2, 5, 3 * 4)
    m = unflatten_map(x, 3)
    assert m.shape == (2, 3, 4, 5) and m[1, 2, 1, 4] == x[1, 4, 2 * 4 + 1]


@pytest.mark.parametrize("size,channels,has_proj", [("full", 64, False), ("full", 70, True),
                                                    ("small", 32, False), ("small", 64, True)])
def test_map_input_skips_the_encoder(size, channels, has_proj):
    bins = 7
    net = AASIST(channels * bins, size=size, map_channels=channels).train()
    names = [n for n, _ in net.named_parameters()]
    assert not any(re.match(r"(encoder|LL|proj|first_bn|first)\.", n) for n in names)
    assert (net.map_proj is not None) == has_proj
    assert net.pos_S.shape[1] == bins if size == "full" else net.pos_s.shape[1] == bins
    x = torch.randn(2, 33, channels * bins, requires_grad=True)
    emb = net.embed(x)
    assert emb.shape == (2, net.embed_dim) == (2, 160)
    emb.sum().backward()
    assert x.grad.abs().sum() > 0


def test_user_errors():
    with pytest.raises(UsageError, match="allowed: small, full"):
        AASIST(16, size="large")
    with pytest.raises(UsageError, match="map_channels=5"):
        AASIST(64, size="full", map_channels=5)
    with pytest.raises(UsageError, match="at least 3 frames"):
        AASIST(16, size="full").embed(torch.randn(1, 2, 16))


def test_reference_state_dict_keys_load():
    net = AASIST(32, size="full")
    ref = {"module." + re.sub(r"^encoder\.(\d+)\.", r"encoder.\1.0.", k): v for k, v in net.state_dict().items()}
    ref.update({"module.ssl_model.w": torch.zeros(1), "module.out_layer.weight": torch.zeros(2, 160)})
    net.load_state_dict(from_reference_state_dict(ref), strict=True)

"""The AASIST family (AASIST, AASIST-L, the ASVspoof 5 AASIST, RawGAT-ST) from its authors' state dicts: the
mapping, wrong architectures, and parity with the reference's logits (fixtures/pretrained/<name>.json, made by
tools/reference_scores/aasist_family.py).

The always-running tests write checkpoints in the reference's format (its key names and shapes, laid out
here by hand from clovaai/aasist models/AASIST.py `Model.__init__` and RawGAT-ST model.py
`RawGAT_ST.__init__`, not from hardspoof's mapping), save them with torch.save and load them back with
weights_only=True. The parity test needs the published files.
"""
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from detector.config import ModelConfig, RunConfig
from detector.model.backends.aasist_original import AASISTOriginal
from detector.model.backends.rawgat import RawGATST
from detector.model.detector import Detector
from detector.model.pretrained.aasist import VARIANTS, convert, load_detector, repeat_pad
from detector.model.pretrained.parity import parity_clips
from manifests.errors import UsageError

torch.set_num_threads(1)
REPO = Path(__file__).resolve().parents[3]
FIXTURES = Path(__file__).parent / "fixtures" / "pretrained"
# variant -> folder and file in the model store (shared/models) and the reference config's filts / gat_dims
PUBLISHED = {"aasist": ("clovaai-aasist", "AASIST.pth"), "aasist-l": ("clovaai-aasist", "AASIST-L.pth"),
             "aasist-asvspoof5": ("asvspoof5-aasist", "best.pth"), "rawgat-st": ("rawgat-st", "RawGAT_ST_mul.pth")}
LAYOUT = {"aasist": ([(1, 32), (32, 32), (32, 64), (64, 64)], (64, 32)),
          "aasist-l": ([(1, 32), (32, 32), (32, 24), (24, 24)], (24, 32)),
          "aasist-asvspoof5": ([(1, 32), (32, 32), (32, 64), (64, 64)], (64, 32))}


def _bn(shapes: dict, prefix: str, n: int) -> None:
    shapes.update({f"{prefix}.weight": (n,), f"{prefix}.bias": (n,), f"{prefix}.running_mean": (n,),
                   f"{prefix}.running_var": (n,), f"{prefix}.num_batches_tracked": ()})


def _linear(shapes: dict, prefix: str, din: int, dout: int) -> None:
    shapes.update({f"{prefix}.weight": (dout, din), f"{prefix}.bias": (dout,)})


def _gat(shapes: dict, prefix: str, din: int, dout: int) -> None:
    """GraphAttentionLayer: att_weight, three projections, BN (both references)."""
    shapes[f"{prefix}.att_weight"] = (dout, 1)
    for proj in ("att_proj", "proj_with_att", "proj_without_att"):
        _linear(shapes, f"{prefix}.{proj}", din, dout)
    _bn(shapes, f"{prefix}.bn", dout)


def rawgat_shapes() -> dict[str, tuple]:
    """Keys and shapes of RawGAT-ST model.py `RawGAT_ST` with model_config_RawGAT_ST.yaml."""
    shapes: dict[str, tuple] = {}
    _bn(shapes, "first_bn", 1)
    for enc in ("encoder1", "encoder2"):
        for i, (a, b) in enumerate([(32, 32), (32, 32), (32, 64), (64, 64), (64, 64), (64, 64)]):
            p = f"{enc}.{i}.0"
            if i:
                _bn(shapes, f"{p}.bn1", a)
                shapes.update({f"{p}.conv1.weight": (b, a, 2, 3), f"{p}.conv1.bias": (b,)})
            shapes.update({f"{p}.conv_1.weight": (b, 1, 2, 3), f"{p}.conv_1.bias": (b,),
                           f"{p}.conv2.weight": (b, b, 2, 3), f"{p}.conv2.bias": (b,)})
            _bn(shapes, f"{p}.bn2", b)
            if a != b:
                shapes.update({f"{p}.conv_downsample.weight": (b, a, 1, 3), f"{p}.conv_downsample.bias": (b,)})
    _gat(shapes, "GAT_layer1", 64, 32)
    _gat(shapes, "GAT_layer2", 64, 32)
    _gat(shapes, "GAT_layer3", 32, 16)
    for pool, dim in (("pool1", 32), ("pool2", 32), ("pool3", 16)):
        _linear(shapes, f"{pool}.proj", dim, 1)
    for layer, din, dout in (("proj1", 14, 12), ("proj2", 23, 12), ("proj", 16, 1), ("proj_node", 7, 2)):
        _linear(shapes, layer, din, dout)
    return shapes


def reference_state(name: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """A random state dict with the keys and shapes of the reference model of variant `name`."""
    shapes = rawgat_shapes() if name == "rawgat-st" else aasist_shapes(name)
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in shapes.items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(7)
        elif key.endswith("running_var"):
            state[key] = 0.5 + torch.rand(shape, generator=gen)
        else:
            state[key] = 0.3 * torch.randn(shape, generator=gen)
    return state


def aasist_shapes(name: str) -> dict[str, tuple]:
    """Keys and shapes of clovaai/aasist models/AASIST.py `Model` with the variant's config."""
    filts, (g0, g1) = LAYOUT[name]
    filts = filts + [filts[-1], filts[-1]]               # encoder: filts[1..4], then filts[4] twice more
    c = filts[-1][1]
    shapes: dict[str, tuple] = {"pos_S": (1, 23, c), "master1": (1, 1, g0), "master2": (1, 1, g0)}
    bn = lambda prefix, n: _bn(shapes, prefix, n)
    linear = lambda prefix, din, dout: _linear(shapes, prefix, din, dout)
    bn("first_bn", 1)
    for i, (a, b) in enumerate(filts):
        p = f"encoder.{i}.0"
        if i:
            bn(f"{p}.bn1", a)
        shapes.update({f"{p}.conv1.weight": (b, a, 2, 3), f"{p}.conv1.bias": (b,),
                       f"{p}.conv2.weight": (b, b, 2, 3), f"{p}.conv2.bias": (b,)})
        bn(f"{p}.bn2", b)
        if a != b:
            shapes.update({f"{p}.conv_downsample.weight": (b, a, 1, 3), f"{p}.conv_downsample.bias": (b,)})
    for layer in ("GAT_layer_S", "GAT_layer_T"):
        _gat(shapes, layer, c, g0)
    for layer, din in (("ST11", g0), ("ST12", g1), ("ST21", g0), ("ST22", g1)):
        p = f"HtrgGAT_layer_{layer}"
        for w in ("11", "22", "12", "M"):
            shapes[f"{p}.att_weight{w}"] = (g1, 1)
        linear(f"{p}.proj_type1", din, din)
        linear(f"{p}.proj_type2", din, din)
        for proj in ("att_proj", "att_projM", "proj_with_att", "proj_without_att", "proj_with_attM",
                     "proj_without_attM"):
            linear(f"{p}.{proj}", din, g1)
        bn(f"{p}.bn", g1)
    for pool, dim in (("pool_S", g0), ("pool_T", g0), ("pool_hS1", g1), ("pool_hT1", g1), ("pool_hS2", g1),
                      ("pool_hT2", g1)):
        linear(f"{pool}.proj", dim, 1)
    linear("out_layer", 5 * g1, 2)
    return shapes


def saved_and_loaded(state: dict, tmp_path: Path) -> dict:
    """`state` through the on-disk format: torch.save, then torch.load(weights_only=True)."""
    torch.save(state, tmp_path / "ref.pth")
    return torch.load(tmp_path / "ref.pth", map_location="cpu", weights_only=True)


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_variant_config_is_valid_and_builds(name):
    cfg = RunConfig.from_dict({"model": VARIANTS[name]}).model     # the config RULES accept every field
    model = Detector(cfg)
    assert isinstance(model.backend, RawGATST if name == "rawgat-st" else AASISTOriginal)
    assert model.head.out_features == 1


# per variant, Detector key -> reference key, for a few places checked by name
NAMED = {
    "aasist": {"frontend.first_bn.running_var": "first_bn.running_var",
               "frontend.encoder.2.conv_downsample.weight": "encoder.2.0.conv_downsample.weight",
               "frontend.encoder.5.bn1.running_mean": "encoder.5.0.bn1.running_mean",
               "backend.HtrgGAT_layer_ST21.att_weight12": "HtrgGAT_layer_ST21.att_weight12",
               "backend.pos_S": "pos_S"},
    "rawgat-st": {"frontend.first_bn.running_var": "first_bn.running_var",
                  "frontend.encoder1.0.conv_1.weight": "encoder1.0.0.conv_1.weight",
                  "frontend.encoder2.2.conv_downsample.weight": "encoder2.2.0.conv_downsample.weight",
                  "frontend.encoder2.4.conv_1.bias": "encoder2.4.0.conv_1.bias",
                  "backend.proj2.weight": "proj2.weight", "backend.pool3.proj.bias": "pool3.proj.bias"},
}
NAMED["aasist-l"] = NAMED["aasist-asvspoof5"] = NAMED["aasist"]
HEAD = {"rawgat-st": "proj_node"}


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_every_reference_tensor_lands_once_and_loads_strictly(name, tmp_path):
    ref = saved_and_loaded(reference_state(name), tmp_path)
    model = Detector(ModelConfig(**VARIANTS[name]))
    model.load_state_dict(convert(name, ref), strict=True)
    ours = model.state_dict()
    # every reference tensor but the output layer appears exactly once among the model's tensors, and vice versa
    fingerprint = lambda t: (tuple(t.shape), round(float(t.double().sum()), 6), round(float(t.double().abs().max()), 6))
    head = HEAD.get(name, "out_layer") + "."
    ref_prints = sorted(fingerprint(v) for k, v in ref.items() if not k.startswith(head))
    our_prints = sorted(fingerprint(v) for k, v in ours.items() if not k.startswith("head."))
    assert ref_prints == our_prints
    for our_key, ref_key in NAMED[name].items():
        assert torch.equal(ours[our_key], ref[ref_key]), our_key


@pytest.mark.parametrize("name,samples", [("aasist", 16000), ("aasist-l", 16000), ("rawgat-st", 64600)])
def test_head_is_the_bona_fide_log_odds_and_eval_is_deterministic(name, samples, tmp_path):
    ref = saved_and_loaded(reference_state(name, seed=3), tmp_path)
    model = load_detector(name, ref)
    head = HEAD.get(name, "out_layer")
    w, b = ref[f"{head}.weight"], ref[f"{head}.bias"]
    assert torch.equal(model.head.weight[0], w[1] - w[0]) and torch.equal(model.head.bias[0], b[1] - b[0])
    wav = torch.from_numpy(np.stack([repeat_pad(c, samples) for c in parity_clips()[:2]]))
    with torch.no_grad():
        out = model(wav)
        emb = model.backend.embed(model.aggregator(model.frontend(wav))[0])
        again = model.score(wav)
    two_class = emb @ w.T + b                                        # the reference's out_layer on the same embedding
    assert torch.isfinite(out.logit).all()
    torch.testing.assert_close(out.logit, two_class[:, 1] - two_class[:, 0], atol=1e-5, rtol=1e-5)
    assert torch.equal(out.logit, again)


def test_repeat_pad_is_the_reference_crop():
    x = np.arange(1, 4, dtype=np.float32)
    assert repeat_pad(x, 7).tolist() == [1, 2, 3, 1, 2, 3, 1]
    assert repeat_pad(np.arange(10.0), 4).tolist() == [0, 1, 2, 3]
    with pytest.raises(UsageError):
        repeat_pad(np.zeros(0), 4)


def _one_line_error(name: str, state: dict) -> str:
    with pytest.raises(UsageError) as err:
        convert(name, state)
    assert "\n" not in str(err.value)
    return str(err.value)


def test_wrong_architectures_are_refused_in_one_line(tmp_path):
    light = saved_and_loaded(reference_state("aasist-l"), tmp_path)
    assert "has shape" in _one_line_error("aasist", light)                        # AASIST-L's weights into AASIST
    lcnn = {"m_frontend.0.conv.weight": torch.zeros(64, 1, 5, 5), "m_output_act.0.weight": torch.zeros(1, 32)}
    assert "unexpected key 'm_frontend.0.conv.weight'" in _one_line_error("aasist", lcnn)
    partial = dict(reference_state("aasist"))
    del partial["HtrgGAT_layer_ST12.att_weightM"]
    assert "missing, the first 'HtrgGAT_layer_ST12.att_weightM'" in _one_line_error("aasist", partial)
    no_head = {k: v for k, v in reference_state("aasist").items() if not k.startswith("out_layer.")}
    assert "'out_layer.weight'" in _one_line_error("aasist", no_head)
    assert "state dict" in _one_line_error("aasist", {"pos_S": [1.0]})
    assert "allowed: aasist" in _one_line_error("aasist-xl", reference_state("aasist"))
    rawgat = reference_state("rawgat-st")
    assert "unexpected key 'encoder1.0.0.conv_1.weight'" in _one_line_error("aasist", rawgat)
    assert "unexpected key 'pos_S'" in _one_line_error("rawgat-st", reference_state("aasist"))
    del rawgat["proj_node.bias"]
    assert "missing, the first 'proj_node.bias'" in _one_line_error("rawgat-st", rawgat)


def test_graph_back_ends_need_their_front_ends():
    with pytest.raises(UsageError, match="sinc"):
        Detector(ModelConfig(frontend="lfcc", aggregation="last", aasist_size="original"))
    with pytest.raises(UsageError, match="--frontend rawgat-st"):
        Detector(ModelConfig(frontend="sinc", aggregation="last", backend="rawgat-st"))


def test_rawgat_reads_its_crop_only():
    model = Detector(ModelConfig(**VARIANTS["rawgat-st"])).eval()
    with pytest.raises(UsageError, match="29 frames"):
        model.score(torch.zeros(1, 48000))


def published_checkpoint(name: str) -> Path | None:
    """The published file of `name`: $HARDSPOOF_MODELS/<folder>/<file> or <repo>/../shared/models/<folder>/<file>."""
    folder, file = PUBLISHED[name]
    places = [REPO.parent / "shared" / "models" / folder / file]
    if os.environ.get("HARDSPOOF_MODELS"):
        places.insert(0, Path(os.environ["HARDSPOOF_MODELS"]) / folder / file)
    return next((p for p in places if p.is_file()), None)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_parity_with_the_published_checkpoint(name):
    path = published_checkpoint(name)
    if path is None:
        folder, file = PUBLISHED[name]
        pytest.skip(f"{folder}/{file} not found under $HARDSPOOF_MODELS/{folder}/ nor ../shared/models/{folder}/")
    fixture = json.loads((FIXTURES / f"{name}.json").read_text())
    import hashlib

    assert hashlib.sha256(path.read_bytes()).hexdigest() == fixture["checkpoint_sha256"], f"{path} is another file"
    model = load_detector(name, torch.load(path, map_location="cpu", weights_only=True))
    wav = torch.from_numpy(np.stack([repeat_pad(c) for c in parity_clips()]))    # (8, 64600)
    with torch.no_grad():
        got = model.score(wav).double().numpy()
    ref = np.array(fixture["logits"], dtype=np.float64)
    err = np.abs(got - (ref[:, 1] - ref[:, 0])).max()
    print(f"{name}: max |hardspoof logit - (out1 - out0)| = {err:.2e} over {len(got)} clips")
    assert err <= 1e-4

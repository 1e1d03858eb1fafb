"""LFCC-LCNN-LSTM from the authors' state dict (detector/model/pretrained/lcnn.py, backends/lcnn.py).

Parity: fixtures/pretrained/lfcc-lcnn-lstm.json holds the upstream model's scores on parity_clips(), made by
tools/reference_scores/nii_lcnn.py (its docstring has the command); the real checkpoint is looked up under
$HARDSPOOF_MODELS or <repo>/../shared/models and the test skips when it is in neither. The other tests write
tiny random checkpoints with the reference's key names and shapes (listed here from the upstream model, not
derived from the code under test) and load them the real way (torch.save, torch.load weights_only=True).
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
import torch

from detector.config import ModelConfig
from detector.model.backends.lcnn import MaxFeatureMap
from detector.model.detector import Detector
from detector.model.frontends.lfcc import dct_matrix, linear_filterbank
from detector.model.pretrained import lcnn, rawnetlite
from detector.model.pretrained.parity import parity_clips
from manifests.errors import UsageError

torch.set_num_threads(1)
NAME, FOLDER, FILE = "lfcc-lcnn-lstm", "nii-lfcc-lcnn-lstm", "trained_network.pt"
FIXTURE = Path(__file__).parent / "fixtures" / "pretrained" / f"{NAME}.json"
REPO = Path(__file__).resolve().parents[3]

# the upstream model's m_transform.0 layers: conv index -> (out, in, kernel); BatchNorm (affine=False) index -> channels
CONVS = {0: (64, 1, 5), 3: (64, 32, 1), 6: (96, 32, 3), 10: (96, 48, 1), 13: (128, 48, 3), 16: (128, 64, 1),
         19: (64, 64, 3), 22: (64, 32, 1), 25: (64, 32, 3)}
BNS = {5: 32, 9: 48, 12: 48, 18: 64, 21: 32, 24: 32}


def reference_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """A random state dict in the upstream Model's format (key names, shapes, fixed LFCC buffers)."""
    g = torch.Generator().manual_seed(seed)
    rnd = lambda *shape: 0.2 * torch.randn(*shape, generator=g)  # noqa: E731
    s = {"input_mean": torch.zeros(1), "input_std": torch.ones(1), "output_mean": torch.zeros(1),
         "output_std": torch.ones(1), "m_frontend.0.lfcc_fb": linear_filterbank(512, 16000, 20),
         "m_frontend.0.l_dct.weight": dct_matrix(20, 20).T.contiguous()}
    for i, (out, inp, k) in CONVS.items():
        s[f"m_transform.0.{i}.weight"], s[f"m_transform.0.{i}.bias"] = rnd(out, inp, k, k), rnd(out)
    for i, c in BNS.items():
        s[f"m_transform.0.{i}.running_mean"] = rnd(c)
        s[f"m_transform.0.{i}.running_var"] = 0.5 + torch.rand(c, generator=g)
        s[f"m_transform.0.{i}.num_batches_tracked"] = torch.tensor(100 + i)
    s["m_output_act.0.weight"], s["m_output_act.0.bias"] = rnd(1, 96), rnd(1)
    for j in (0, 1):
        for d in ("", "_reverse"):
            for p, shape in (("weight_ih", (192, 96)), ("weight_hh", (192, 48)), ("bias_ih", (192,)),
                             ("bias_hh", (192,))):
                s[f"m_before_pooling.0.{j}.l_blstm.{p}_l0{d}"] = rnd(*shape)
    return s


def saved_and_loaded(state: dict, tmp_path: Path) -> dict:
    torch.save(state, tmp_path / FILE)
    return torch.load(tmp_path / FILE, weights_only=True)


def detector(state: dict) -> Detector:
    model = Detector(ModelConfig(**lcnn.VARIANTS[NAME]))
    model.load_state_dict(lcnn.convert(NAME, state), strict=True)
    return model.eval()


def checkpoint() -> Path:
    env = os.environ.get("HARDSPOOF_MODELS")
    places = ([Path(env) / FOLDER / FILE, Path(env) / "pretrained" / NAME / FILE] if env else []) + \
        [REPO.parent / "shared" / "models" / FOLDER / FILE]
    for p in places:
        if p.is_file():
            return p
    pytest.skip(f"{FILE} not found in $HARDSPOOF_MODELS/{FOLDER}/ or $HARDSPOOF_MODELS/pretrained/{NAME}/ "
                f"({env or 'unset'}) nor in <repo>/../shared/models/{FOLDER}/")


def test_parity_with_the_reference_scores():
    path = checkpoint()
    fixture = json.loads(FIXTURE.read_text())
    assert hashlib.sha256(path.read_bytes()).hexdigest() == fixture["checkpoint_sha256"], f"{path} is another file"
    model = detector(torch.load(path, map_location="cpu", weights_only=True))
    with torch.no_grad():
        got = torch.tensor([float(model.score(torch.from_numpy(c)[None])) for c in parity_clips()])
    diff = (got - torch.tensor(fixture["bonafide_logit"])).abs().max()
    print(f"max |hardspoof - reference| bona fide logit over {len(got)} clips: {float(diff):.3g}")
    assert diff <= 1e-4


def test_random_reference_checkpoint_loads_strictly_and_uses_every_key(tmp_path):
    ref = saved_and_loaded(reference_state(), tmp_path)
    out = lcnn.convert(NAME, ref)
    fixed = {k for k in ref if k.startswith(("input_", "output_", "m_frontend."))}
    for key in set(ref) - fixed:  # each trained reference tensor lands, unchanged, on exactly one Detector key
        assert sum(torch.equal(ref[key], v) for v in out.values()) == 1, key
    assert len(out) == len(ref) - len(fixed) == len(Detector(ModelConfig(**lcnn.VARIANTS[NAME])).state_dict())


def test_forward_finite_deterministic_and_head_is_the_reference_output_layer(tmp_path):
    ref = saved_and_loaded(reference_state(), tmp_path)
    model = detector(ref)
    wav = torch.from_numpy(parity_clips((16_000,))[0])[None]
    with torch.no_grad():
        first, second = model.score(wav), model.score(wav)
        emb = model.backend.embed(model.aggregator(model.frontend(wav))[0])
    assert torch.isfinite(first).all() and torch.equal(first, second)
    # the reference's inference score is its output Linear, unsigned: bona fide = 1 in training
    expected = emb @ ref["m_output_act.0.weight"].T + ref["m_output_act.0.bias"]
    torch.testing.assert_close(first, expected[:, 0])


def test_max_feature_map_pairs_channel_i_with_i_plus_half():
    """The reference views (B, C) as (B, 2, C/2) and takes the max over the 2: channel i against i + C/2."""
    x = torch.tensor([1.0, 5.0, 3.0, 2.0]).view(1, 4, 1, 1)
    assert MaxFeatureMap()(x).flatten().tolist() == [3.0, 5.0]


def test_short_clip_is_refused_in_one_line():
    model = detector(reference_state())
    with pytest.raises(UsageError, match="at least 16 frames") as e:
        model.score(torch.zeros(1, 2000))
    assert "\n" not in str(e.value)
    assert torch.isfinite(model.score(torch.zeros(1, 2400))).all()


@pytest.mark.parametrize("change, message", [
    (lambda s: s.pop("m_before_pooling.0.1.l_blstm.bias_hh_l0_reverse"), "missing, the first "
                                                                         "'m_before_pooling.0.1.l_blstm.bias_hh_l0_reverse'"),
    (lambda s: s.update({"m_transform.0.6.weight": torch.zeros(96, 32, 5, 5)}), "'m_transform.0.6.weight' has shape"),
    (lambda s: s.update({"m_transform.0.30.weight": torch.zeros(1)}), "unexpected key 'm_transform.0.30.weight'"),
    (lambda s: s.update({"m_frontend.0.lfcc_fb": linear_filterbank(512, 16000, 20) * 1.1}), "fixed 'm_frontend.0.lfcc_fb'"),
])
def test_broken_reference_dict_names_the_first_mismatch(change, message):
    state = reference_state()
    change(state)
    with pytest.raises(UsageError, match=message) as e:
        lcnn.convert(NAME, state)
    assert "\n" not in str(e.value)


def test_other_architecture_is_refused_in_one_line():
    other = Detector(ModelConfig(**rawnetlite.VARIANTS["rawnetlite"])).state_dict()
    with pytest.raises(UsageError, match=f"not a {NAME} checkpoint: unexpected key") as e:
        lcnn.convert(NAME, other)
    assert "\n" not in str(e.value)
    with pytest.raises(UsageError, match="state dict"):
        lcnn.convert(NAME, {"model": {"a": 1}})

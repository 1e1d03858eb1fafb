"""RawNetLite from the authors' state dicts (detector/model/pretrained/rawnetlite.py, frontends/ and backends/
rawnetlite.py).

Parity: fixtures/pretrained/<name>.json hold the upstream model's outputs on parity_clips(), made by
tools/reference_scores/rawnetlite.py (its docstring has the commands); the real checkpoints are looked up
under $HARDSPOOF_MODELS or <repo>/../shared/models and the test skips when absent. The other tests write tiny
random checkpoints with the reference's key names and shapes (listed here from the upstream RawNetLite.py,
not derived from the code under test) and load them the real way (torch.save, torch.load weights_only=True).
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
import torch

from detector.config import ModelConfig
from detector.model.detector import Detector
from detector.model.frontends.rawnetlite import prepare
from detector.model.pretrained import lcnn, rawnetlite
from detector.model.pretrained.parity import parity_clips
from manifests.errors import UsageError

torch.set_num_threads(1)
FOLDER = "rawnetlite"
FILES = {"rawnetlite": "triple_cross_domain_focal_rawnet_lite.pt",
         "rawnetlite-cross-domain": "cross_domain_focal_rawnet_lite.pt"}
FIXTURES = Path(__file__).parent / "fixtures" / "pretrained"
REPO = Path(__file__).resolve().parents[3]


def reference_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """A random state dict in the upstream RawNetLite's format (key names and shapes of RawNetLite.py)."""
    g = torch.Generator().manual_seed(seed)
    rnd = lambda *shape: 0.2 * torch.randn(*shape, generator=g)  # noqa: E731
    s: dict[str, torch.Tensor] = {}

    def bn(prefix: str, n: int) -> None:
        s.update({f"{prefix}.weight": 1 + rnd(64), f"{prefix}.bias": rnd(64), f"{prefix}.running_mean": rnd(64),
                  f"{prefix}.running_var": 0.5 + torch.rand(64, generator=g),
                  f"{prefix}.num_batches_tracked": torch.tensor(n)})

    s["conv_pre.weight"], s["conv_pre.bias"] = rnd(64, 1, 3), rnd(64)
    bn("bn_pre", 1)
    for b in (1, 2, 3):
        for c in (1, 2):
            s[f"resblock{b}.conv{c}.weight"], s[f"resblock{b}.conv{c}.bias"] = rnd(64, 64, 3), rnd(64)
            bn(f"resblock{b}.bn{c}", 10 * b + c)
    for d in ("", "_reverse"):
        for p, shape in (("weight_ih", (384, 64)), ("weight_hh", (384, 128)), ("bias_ih", (384,)),
                         ("bias_hh", (384,))):
            s[f"gru.{p}_l0{d}"] = rnd(*shape)
    s["fc1.weight"], s["fc1.bias"], s["fc2.weight"], s["fc2.bias"] = rnd(64, 256), rnd(64), rnd(1, 64), rnd(1)
    return s


def detector(name: str, state: dict) -> Detector:
    model = Detector(ModelConfig(**rawnetlite.VARIANTS[name]))
    model.load_state_dict(rawnetlite.convert(name, state), strict=True)
    return model.eval()


def checkpoint(name: str) -> Path:
    file, env = FILES[name], os.environ.get("HARDSPOOF_MODELS")
    places = ([Path(env) / FOLDER / file, Path(env) / "pretrained" / name / file] if env else []) + \
        [REPO.parent / "shared" / "models" / FOLDER / file]
    for p in places:
        if p.is_file():
            return p
    pytest.skip(f"{file} not found in $HARDSPOOF_MODELS/{FOLDER}/ or $HARDSPOOF_MODELS/pretrained/{name}/ "
                f"({env or 'unset'}) nor in <repo>/../shared/models/{FOLDER}/")


@pytest.mark.parametrize("name", sorted(FILES))
def test_parity_with_the_reference_scores(name):
    path = checkpoint(name)
    fixture = json.loads((FIXTURES / f"{name}.json").read_text())
    assert hashlib.sha256(path.read_bytes()).hexdigest() == fixture["checkpoint_sha256"], f"{path} is another file"
    model = detector(name, torch.load(path, map_location="cpu", weights_only=True))
    with torch.no_grad():
        got = torch.tensor([float(model.score(torch.from_numpy(c)[None])) for c in parity_clips()])
    diff = (got - torch.tensor(fixture["bonafide_logit"])).abs().max()
    print(f"{name}: max |hardspoof - reference| bona fide logit over {len(got)} clips: {float(diff):.3g}")
    assert diff <= 1e-4
    # the reference's own output: p(fake) = sigmoid(-bona fide logit)
    p_fake = torch.tensor([p for p, _ in fixture["outputs"]])
    torch.testing.assert_close(torch.sigmoid(-got), p_fake, atol=1e-5, rtol=0)


def test_random_reference_checkpoint_loads_strictly_and_uses_every_key(tmp_path):
    torch.save(reference_state(), tmp_path / FILES["rawnetlite"])
    ref = torch.load(tmp_path / FILES["rawnetlite"], weights_only=True)
    out = rawnetlite.convert("rawnetlite", ref)
    for key, value in ref.items():  # each reference tensor lands on exactly one key; fc2 negated (bona fide)
        want = -value if key.startswith("fc2.") else value
        assert sum(torch.equal(want, v) for v in out.values()) == 1, key
    assert len(out) == len(ref)


def test_forward_finite_deterministic_and_head_is_minus_fc2():
    ref = reference_state()
    model = detector("rawnetlite-cross-domain", ref)
    wav = torch.from_numpy(parity_clips((27_500,))[0])[None]
    with torch.no_grad():
        first, second = model.score(wav), model.score(wav)
        emb = model.backend.embed(model.aggregator(model.frontend(wav))[0])
    assert torch.isfinite(first).all() and torch.equal(first, second)
    fake_logit = emb @ ref["fc2.weight"].T + ref["fc2.bias"]   # the reference: p(fake) = sigmoid(fake_logit)
    torch.testing.assert_close(first, -fake_logit[:, 0])


def test_input_is_prepared_like_the_reference():
    """Peak of the WHOLE clip (here beyond the 3 s cut), then the first 48,000 samples; zero-padding, not repeat."""
    long = torch.full((1, 60_000), 0.1)
    long[0, 55_000] = -0.5
    torch.testing.assert_close(prepare(long, 48_000), torch.full((1, 48_000), 0.2))
    short = torch.tensor([[0.25, -0.5, 0.1]])
    got = prepare(short, 48_000)
    assert got.shape == (1, 48_000) and not got[0, 3:].any()
    torch.testing.assert_close(got[0, :3], torch.tensor([0.5, -1.0, 0.2]))
    assert torch.equal(prepare(torch.zeros(1, 100), 48_000), torch.zeros(1, 48_000))  # silence stays finite


def test_zero_padded_batch_scores_like_single_clips():
    model = detector("rawnetlite", reference_state())
    clips = [torch.from_numpy(c) for c in parity_clips((9_000, 52_311))]
    batch = torch.nn.utils.rnn.pad_sequence(clips, batch_first=True)
    with torch.no_grad():
        single = torch.cat([model.score(c[None]) for c in clips])
        torch.testing.assert_close(model.score(batch), single, atol=1e-5, rtol=0)


@pytest.mark.parametrize("change, message", [
    (lambda s: s.pop("resblock2.bn1.running_var"), "missing, the first 'resblock2.bn1.running_var'"),
    (lambda s: s.update({"gru.weight_hh_l0": torch.zeros(384, 64)}), "'gru.weight_hh_l0' has shape"),
    (lambda s: s.update({"resblock4.conv1.weight": torch.zeros(1)}), "unexpected key 'resblock4.conv1.weight'"),
])
def test_broken_reference_dict_names_the_first_mismatch(change, message):
    state = reference_state()
    change(state)
    with pytest.raises(UsageError, match=message) as e:
        rawnetlite.convert("rawnetlite", state)
    assert "\n" not in str(e.value)


def test_other_architecture_is_refused_in_one_line():
    other = Detector(ModelConfig(**lcnn.VARIANTS["lfcc-lcnn-lstm"])).state_dict()
    with pytest.raises(UsageError, match="not a rawnetlite checkpoint: unexpected key") as e:
        rawnetlite.convert("rawnetlite", other)
    assert "\n" not in str(e.value)
    with pytest.raises(UsageError, match="unknown RawNetLite variant"):
        rawnetlite.convert("rawnet", reference_state())

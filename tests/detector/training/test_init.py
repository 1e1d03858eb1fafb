"""`detector train --init`: start from a published countermeasure (an AASIST-L checkpoint in the authors' format)
or a finished run; freeze the encoder, train the last N blocks, scale the start's learning rate."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file

from detector.cli import main as detector
from detector.model.detector import Detector
from detector.model.pretrained import registry
from detector.training.init import blocks, init_config
from detector.training.loop import train
from manifests.errors import UsageError
from tests.detector.model.test_pretrained_registry import store  # noqa: F401  (fixture)

from ..conftest import tiny_config

FAST = ["--epochs", "1", "--max-steps", "2", "--batch-size", "2", "--crop", "8000", "--no-augment", "--no-progress",
        "--average-last", "1"]


@pytest.fixture
def staged(store):  # noqa: F811
    registry.stage("aasist-l", store)
    return registry.converted_state("aasist-l")


def _train(manifest: Path, out: Path, *extra: str):
    r = CliRunner().invoke(detector, ["train", "--manifest", str(manifest), "--out", str(out), "--loss", "ce",
                                      "--init", "pretrained:aasist-l", *FAST, *extra])
    return r.exit_code, r.output


def test_frozen_encoder_stays_the_published_one_and_the_rest_trains(manifest, tmp_path, staged):
    code, out = _train(manifest, tmp_path / "run", "--freeze", "--fixed-crop", "--cache-frontend",
                       "--frontend-cache-dir", str(tmp_path / "cache"))
    assert code == 0, out
    final = load_file(str(tmp_path / "run" / "final" / "model.safetensors"))
    enc = [k for k in staged if k.startswith("frontend.") and staged[k].is_floating_point()]
    assert enc and all(torch.equal(final[k], staged[k]) for k in enc)  # BatchNorm statistics included
    back = [k for k in staged if k.startswith("backend.") and staged[k].is_floating_point() and "running" not in k]
    assert any(not torch.equal(final[k], staged[k]) for k in back)
    meta = json.loads((tmp_path / "run" / "final" / "meta.json").read_text())
    assert meta["init"] == "pretrained:aasist-l" and meta["init_sha256"] == registry.entry("aasist-l").sha256
    assert list((tmp_path / "cache").rglob("*.npy"))  # the frozen encoder's outputs, kept for the next run


def test_whole_model_trains_by_default_and_train_last_limits_it(manifest, tmp_path, staged):
    assert _train(manifest, tmp_path / "all")[0] == 0
    final = load_file(str(tmp_path / "all" / "final" / "model.safetensors"))
    assert not torch.equal(final["frontend.encoder.0.conv1.weight"], staged["frontend.encoder.0.conv1.weight"])
    code, out = _train(manifest, tmp_path / "last", "--train-last", "1")
    assert code == 0, out
    final = load_file(str(tmp_path / "last" / "final" / "model.safetensors"))
    changed = {k.split(".")[0] for k in staged if staged[k].is_floating_point() and "running" not in k
               and not torch.equal(final[k], staged[k])}
    assert changed == {"head"}


def test_an_architecture_option_that_contradicts_the_start_is_one_line(manifest, tmp_path, staged):
    code, out = _train(manifest, tmp_path / "run", "--frontend", "lfcc")
    assert code == 2 and "does not match" in out and len(out.strip().splitlines()) == 1


def test_a_yaml_config_without_architecture_takes_the_start(staged):
    from detector.config import RunConfig

    cfg = init_config(RunConfig().replace("train", init="pretrained:aasist-l"))
    assert cfg.model.frontend == registry.model_config("aasist-l")["frontend"] and cfg.model.finetune is None
    with pytest.raises(UsageError, match="does not match"):
        init_config(tiny_config().replace("train", init="pretrained:aasist-l"))


def test_blocks_are_in_forward_order_and_end_with_the_head(staged):
    model = Detector(registry.run_config("aasist-l").model)
    names = [n for n, _ in blocks(model)]
    assert names[0].startswith("frontend.") and names[-1] == "head"
    assert names.index("frontend.encoder.5") < min(i for i, n in enumerate(names) if n.startswith("backend."))


def test_init_from_a_finished_run(manifest, tmp_path, staged):
    first = tmp_path / "first"
    train([str(manifest)], first, tiny_config(loss="ce"), progress=False)
    s = train([str(manifest)], tmp_path / "second", tiny_config(loss="ce", init=str(first), pretrained_lr_scale=0.0),
              progress=False)
    a = load_file(str(first / "final" / "model.safetensors"))
    b = load_file(str(Path(s["out"]) / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a if a[k].is_floating_point())  # lr * 0: nothing moved


def test_evaluating_a_frozen_start_reuses_the_training_encoder_cache(manifest, tmp_path, staged):
    from detector.scoring.evaluate import evaluate

    cache = tmp_path / "cache"
    assert _train(manifest, tmp_path / "run", "--freeze", "--fixed-crop", "--cache-frontend",
                  "--frontend-cache-dir", str(cache))[0] == 0
    before = sorted(p.name for p in cache.rglob("*.npy"))
    cached = evaluate(tmp_path / "run", manifest, tmp_path / "e1", progress=False, split="dev",
                      frontend_cache_dir=str(cache))
    assert sorted(p.name for p in cache.rglob("*.npy")) == before  # the dev windows were encoded in training
    evaluate(tmp_path / "run", manifest, tmp_path / "e3", progress=False, split="dev",
             frontend_cache_dir=str(tmp_path / "fresh"))
    assert list((tmp_path / "fresh").rglob("*.npy"))  # the cache is in use (a fresh one fills)
    plain = evaluate(tmp_path / "run", manifest, tmp_path / "e2", progress=False, split="dev")
    assert cached["eer"] == plain["eer"]
    a, b = ((tmp_path / d / "scores.tsv").read_text().splitlines()[2:] for d in ("e1", "e2"))
    assert [float(x.split("\t")[1]) for x in a] == pytest.approx([float(x.split("\t")[1]) for x in b], abs=1e-5)


def test_wise_alpha_keeps_the_point_between_start_and_fine_tuned(manifest, tmp_path, staged):
    first = tmp_path / "first"
    train([str(manifest)], first, tiny_config(loss="ce"), progress=False)
    start = load_file(str(first / "final" / "model.safetensors"))
    tuned = {}
    for alpha in (1.0, 0.25):
        s = train([str(manifest)], tmp_path / f"a{alpha}", tiny_config(loss="ce", init=str(first), wise_alpha=alpha),
                  progress=False)
        tuned[alpha] = load_file(str(Path(s["out"]) / "model.safetensors"))
    moved = [k for k in start if start[k].is_floating_point() and not torch.equal(start[k], tuned[1.0][k])]
    assert moved  # the fine-tuning changed weights, so the interpolation is visible
    for k in moved:
        torch.testing.assert_close(tuned[0.25][k], start[k] + 0.25 * (tuned[1.0][k] - start[k]))
    assert json.loads((tmp_path / "a0.25" / "final" / "meta.json").read_text())["wise_alpha"] == 0.25


def test_wise_alpha_without_a_start_is_one_line(manifest, tmp_path):
    r = CliRunner().invoke(detector, ["train", "--manifest", str(manifest), "--out", str(tmp_path / "r"),
                                      "--wise-alpha", "0.5", *FAST])
    assert r.exit_code == 2 and "needs --init" in r.output and len(r.output.strip().splitlines()) == 1
    assert not (tmp_path / "r" / "final").exists()

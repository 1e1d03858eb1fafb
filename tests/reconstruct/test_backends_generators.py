"""Mimi, Vocos (mel and EnCodec), BigVGAN-v2 and SNAC: tiny random models saved in each library's real
on-disk format (save_pretrained, config.yaml + pytorch_model.bin, config.json + bigvgan_generator.pt,
config.json + pytorch_model.bin), loaded through the real resolution path (--checkpoint, the store)."""
from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch

from manifests.errors import UsageError
from reconstruct import models as M
from reconstruct import weights as W
from reconstruct.backends import get
from tests.conftest import speechlike
from tests.reconstruct.backend_checks import (check_checkpoint_path, check_edge_inputs, check_offline_error,
                                          check_store_path, make_store)

torch.set_num_threads(1)

LIBRARY = {"mimi": "transformers", "vocos-mel-24khz": "vocos", "vocos-encodec-24khz": "vocos",
           "bigvgan-v2-22khz": "bigvgan", "snac-24khz": "snac"}
FAST = {"mimi": {"n_quantizers": 2}, "vocos-mel-24khz": {}, "vocos-encodec-24khz": {"bandwidth_kbps": 1.5},
        "bigvgan-v2-22khz": {}, "snac-24khz": {}}
NAMES = [pytest.param(n, marks=pytest.mark.skipif(importlib.util.find_spec(lib) is None,
                                                  reason=f"{lib} not installed (pip install -e '.[generators]')"))
         for n, lib in LIBRARY.items()]
INSTALLED = [n for n, lib in LIBRARY.items() if importlib.util.find_spec(lib) is not None]
STOCHASTIC = {"snac-24khz"}  # its decoder adds noise


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return make_store(tmp_path_factory.mktemp("store"), INSTALLED)


@pytest.fixture(scope="module")
def loaded(store):
    return {name: get(name)(FAST[name], checkpoint=store / name) for name in INSTALLED}


@pytest.mark.parametrize("name", NAMES)
def test_checkpoint_path_invariants(name, loaded, store):
    check_checkpoint_path(loaded[name], FAST[name], name in STOCHASTIC, W.checkpoint_sha256(store / name))


@pytest.mark.parametrize("name", NAMES)
def test_store_path_loads_same_weights(name, loaded, store, monkeypatch):
    check_store_path(name, FAST[name], loaded[name], store, monkeypatch)


@pytest.mark.parametrize("name", NAMES)
def test_raw_call_is_the_backend_without_the_wrapper(name, loaded):
    """What the benchmark's overhead column compares: the same model output, less resampling and checks."""
    be = loaded[name]
    wav = speechlike(0.5, be.sample_rate, seed=4)  # already at the model's rate: no resampling either side
    torch.manual_seed(0)
    with torch.inference_mode():
        raw = np.asarray(be.raw(torch.from_numpy(wav))).reshape(-1)[:wav.shape[0]]
    ours = be.reconstruct(wav, be.sample_rate, seed=0)
    assert np.array_equal(np.clip(raw, -1, 1), ours[:raw.shape[0]])


@pytest.mark.parametrize("name", NAMES)
def test_offline_without_weights_names_model_source_and_pull(name, tmp_path, monkeypatch):
    check_offline_error(name, FAST[name], tmp_path / "empty", monkeypatch)


@pytest.mark.parametrize("name", NAMES)
def test_edge_inputs(name, loaded):
    check_edge_inputs(loaded[name])


@pytest.mark.skipif("mimi" not in INSTALLED or "vocos-encodec-24khz" not in INSTALLED, reason="needs the libraries")
def test_bad_parameters_are_usage_errors(store):
    with pytest.raises(UsageError, match="codebooks"):
        get("mimi")({"n_quantizers": 99}, checkpoint=store / "mimi")
    with pytest.raises(UsageError, match="1.5, 3, 6, 12"):
        get("vocos-encodec-24khz")({"bandwidth_kbps": 24})


@pytest.mark.skipif(len(INSTALLED) < len(LIBRARY), reason="needs every library of this file")
def test_wrong_folder_is_a_clear_error(store, tmp_path):
    with pytest.raises(UsageError, match="not a Vocos model folder"):
        get("vocos-mel-24khz")(checkpoint=store / "snac-24khz")
    with pytest.raises(UsageError, match="not a mel one"):
        get("vocos-mel-24khz")(checkpoint=store / "vocos-encodec-24khz")
    with pytest.raises(UsageError, match="not a BigVGAN model folder"):
        get("bigvgan-v2-22khz")(checkpoint=store / "snac-24khz")
    with pytest.raises(UsageError, match="not a SNAC model folder"):
        get("snac-24khz")(checkpoint=store / "mimi")
    with pytest.raises(UsageError, match="not a Mimi model folder"):
        get("mimi")(checkpoint=store / "vocos-mel-24khz")
    with pytest.raises(UsageError, match="22050 Hz"):  # a 24 kHz BigVGAN config in the 22 kHz back-end's folder
        bad = tmp_path / "bigvgan24"
        get("bigvgan-v2-22khz").random_weights(bad, tiny=True)
        cfg = json.loads((bad / "config.json").read_text())
        (bad / "config.json").write_text(json.dumps(dict(cfg, sampling_rate=24000)))
        get("bigvgan-v2-22khz")(checkpoint=bad)


@pytest.mark.skipif("vocos-mel-24khz" not in INSTALLED, reason="vocos not installed")
def test_vocos_config_may_only_name_vocos_classes(store, tmp_path):
    """config.yaml names classes by import path: anything outside vocos is refused before it is imported."""
    import shutil

    folder = tmp_path / "vocos"
    shutil.copytree(store / "vocos-mel-24khz", folder)
    text = (folder / "config.yaml").read_text().replace("vocos.heads.ISTFTHead", "os.system")
    (folder / "config.yaml").write_text(text)
    with pytest.raises(UsageError, match="refusing to import"):
        get("vocos-mel-24khz")(checkpoint=folder)


@pytest.mark.skipif("vocos-encodec-24khz" not in INSTALLED, reason="vocos not installed")
def test_vocos_encodec_takes_encodec_weights_from_the_encodec_store_entry(store, tmp_path, monkeypatch):
    """The Vocos repo does not hold EnCodec's weights: without a *.th beside it, the encodec-24khz entry is used,
    and without that the model counts as not available (models pull fetches both)."""
    import shutil

    root = tmp_path / "models"
    shutil.copytree(store / "vocos-encodec-24khz", root / "vocos-encodec-24khz",
                    ignore=shutil.ignore_patterns("*.th"))
    monkeypatch.setenv("HARDSPOOF_MODELS", str(root))
    cls = get("vocos-encodec-24khz")
    assert cls.weights_location() is None
    assert cls.also_pull == ("encodec-24khz",)
    (root / "encodec-24khz").mkdir()
    shutil.copy(store / "vocos-encodec-24khz" / "encodec_24khz.th", root / "encodec-24khz" / "encodec_24khz.th")
    assert cls.weights_location() == "store"
    wav = speechlike(0.3, 16000)
    a = cls(FAST["vocos-encodec-24khz"]).reconstruct(wav, 16000)
    b = cls(FAST["vocos-encodec-24khz"], checkpoint=store / "vocos-encodec-24khz").reconstruct(wav, 16000)
    assert np.array_equal(a, b)


@pytest.mark.skipif("vocos-mel-24khz" not in INSTALLED, reason="vocos not installed")
def test_bench_reports_raw_rtf_and_overhead(monkeypatch, tmp_path):
    monkeypatch.setenv("HARDSPOOF_MODELS", str(tmp_path / "empty"))  # random weights of the published size (13 M)
    rows = M.bench(models=["vocos-mel-24khz", "griffinlim"], seconds=0.5, repeats=1, params={"n_iter": "4"})
    vocos, gl = rows
    assert vocos.weights.startswith("random-init") and vocos.raw_rtf_median > 0 and vocos.overhead_pct is not None
    assert gl.raw_rtf_median is None and gl.overhead_pct is None and '"n_iter": 4' in gl.params
    assert "overhead" in M.format_table(rows)

"""mel-diffusion back-end: loads checkpoints from `reconstruct fit` (--checkpoint, store, bundled)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from manifests.errors import UsageError
from reconstruct.backends import get
from reconstruct.backends.mel_diffusion import BUNDLED, MelDiffusion
from reconstruct.fit import FitConfig, fit_mel_diffusion
from tests.conftest import speechlike

torch.set_num_threads(1)

FAST = {"steps": 4, "strength": 0.5, "gl_iters": 4}


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    from tests.conftest import write_corpus

    root = tmp_path_factory.mktemp("md")
    corpus = write_corpus(root / "corpus")
    fit_mel_diffusion(FitConfig(corpus=str(corpus), out=str(root / "ckpt"), steps=2, batch_size=2,
                                crop_frames=16, channels=(8, 16, 16)), progress=False)
    return root / "ckpt"


def test_registered_as_diffusion():
    cls = get("mel-diffusion")
    assert cls is MelDiffusion and cls.method == "diffusion" and cls.sample_rate == 16000


def test_output_invariants_and_seeds(ckpt):
    be = MelDiffusion(FAST, checkpoint=ckpt)
    assert be.checkpoint_sha256 and len(be.checkpoint_sha256) == 64
    wav = speechlike(0.7, 22050)  # odd length, foreign rate: the base resamples back
    a = be.reconstruct(wav, 22050, seed=1)
    assert a.shape == wav.shape and a.dtype == np.float32 and np.isfinite(a).all()
    assert np.abs(a).max() <= 1.0
    np.testing.assert_array_equal(a, be.reconstruct(wav, 22050, seed=1))
    assert not np.allclose(a, be.reconstruct(wav, 22050, seed=2))


def test_loads_from_the_model_store(ckpt, monkeypatch, tmp_path):
    import shutil

    shutil.copytree(ckpt, tmp_path / "store" / "mel-diffusion")
    monkeypatch.setenv("HARDSPOOF_MODELS", str(tmp_path / "store"))
    be = MelDiffusion(FAST)
    assert be.checkpoint_path == tmp_path / "store" / "mel-diffusion"
    assert MelDiffusion.weights_location() == "store"
    assert be.reconstruct(speechlike(0.3), 16000).shape == (4800,)


@pytest.mark.skipif(not (BUNDLED / "config.json").is_file(), reason="bundled checkpoint not built")
def test_bundled_checkpoint_loads_when_nothing_else_is_given(monkeypatch, tmp_path):
    monkeypatch.setenv("HARDSPOOF_MODELS", str(tmp_path / "empty-store"))
    be = MelDiffusion({"steps": 10, "strength": 0.2, "gl_iters": 4})
    assert be.checkpoint_path == BUNDLED and MelDiffusion.weights_location() == "bundled"
    out = be.reconstruct(speechlike(0.5), 16000, seed=0)
    assert out.shape == (8000,) and np.isfinite(out).all()


def test_bad_params_and_bad_checkpoint(tmp_path):
    with pytest.raises(UsageError, match="strength"):
        MelDiffusion({"strength": 0.0}, checkpoint=tmp_path)
    with pytest.raises(UsageError, match="not a mel-diffusion checkpoint"):
        MelDiffusion(checkpoint=tmp_path)

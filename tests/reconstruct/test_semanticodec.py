"""SemantiCodec: the back-end over the upstream `semanticodec` package (installed from git, not from PyPI).

Without the package (CI): selecting it is one line and exit 2 naming the install command, `--method
diffusion` falls back, and a checkpoint folder with a missing or mismatched file is one line and exit 2
naming the file before any worker starts (the checks read shapes only, no package needed).
With the package: the back-end loads random weights of the published architecture saved in the
package's own checkpoint layout and gives, bit for bit, what the upstream's own file-based call gives.
"""
from __future__ import annotations

import gc
import importlib.util
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from click.testing import CliRunner

from manifests.errors import UsageError
from reconstruct import models as M
from reconstruct.backends import get
from reconstruct.backends import semanticodec_files as SF
from reconstruct.backends.semanticodec_codec import COMMIT
from reconstruct.cli import main
from reconstruct.plan import default_model
from tests.conftest import speechlike

INSTALLED = importlib.util.find_spec("semanticodec") is not None
_skip = pytest.mark.skipif(not INSTALLED, reason="the semanticodec package is not installed "
                           "(pip install -e '.[semanticodec]', from git); see docs/backends.md")


def real_package(test):
    """Full-size models on a CPU: a few minutes each (14 min for both on a heavily shared 2-core machine)."""
    return _skip(pytest.mark.timeout(1800)(test))


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def fake_variant(root: Path, rate: int = 100, vocab: int = 4096, decoder_rate: int | None = None,
                 flat: bool = False) -> dict[str, Path]:
    """SemantiCodec files with the published tensor names and shapes (stride-0 tensors: a few bytes each)."""
    files = SF.variant_files(root, rate, vocab) if not flat else {
        "encoder": root / "encoder.ckpt", "decoder": root / "decoder.ckpt",
        "codebook": SF.variant_files(root, rate, vocab)["codebook"]}
    for f in files.values():
        f.parent.mkdir(parents=True, exist_ok=True)
    dim, layers, _ = SF.RATES[rate]
    big = lambda *shape: torch.zeros(1).expand(*shape)  # noqa: E731
    torch.save({"encoder_output_linear.weight": big(dim, 4 * dim),
                **{f"encoder.weight_ih_l{k}": big(1) for k in range(layers)}}, files["encoder"])
    context = 2 * SF.RATES[decoder_rate or rate][0] + SF.POS_DIM
    torch.save({"model.diffusion_model.input_blocks.4.2.transformer_blocks.0.attn2.to_k.weight": big(128, context),
                "first_stage_model.vocoder.conv_pre.weight": big(1)}, files["decoder"])
    np.save(files["codebook"], np.zeros((SF.VOCABS[vocab], dim), np.float32))
    return files


@pytest.fixture
def no_package(monkeypatch):
    """As on a machine without the package, whether or not this one has it."""
    monkeypatch.setitem(sys.modules, "semanticodec", None)


@pytest.fixture
def no_workers(monkeypatch):
    """Fail the test if a worker (the thing that loads a model) is ever constructed."""
    def refuse(*a, **k):
        raise AssertionError("a worker started")
    monkeypatch.setattr("reconstruct.executors.ReconstructWorker", refuse)


def test_selecting_it_without_the_package_is_one_line_exit_2_naming_the_install(corpus, tmp_path, no_package,
                                                                                 no_workers):
    r = invoke("run", "--model", "semanticodec", "--corpus", corpus, "--out", tmp_path / "out", "--executor", "local")
    assert r.exit_code == 2, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.output
    assert f"pip install 'semanticodec @ git+https://github.com/haoheliu/SemantiCodec-inference@{COMMIT}'" in lines[0]
    with pytest.raises(UsageError, match="pip install"):
        get("semanticodec")()


def test_an_explicit_checkpoint_without_the_package_names_the_install(corpus, tmp_path, no_package, no_workers):
    fake_variant(tmp_path / "sc")
    r = invoke("run", "--model", "semanticodec", "--checkpoint", tmp_path / "sc", "--corpus", corpus,
               "--out", tmp_path / "out", "--executor", "local")
    assert r.exit_code == 2 and "pip install" in r.output and len(r.output.strip().splitlines()) == 1


def test_method_diffusion_without_the_package_falls_back(tmp_path, monkeypatch, no_package):
    monkeypatch.setenv("HARDSPOOF_MODELS", str(tmp_path / "store"))
    fake_variant(tmp_path / "store" / "semanticodec")  # staged weights do not help without the package
    name, notice = default_model("diffusion")
    assert name == "mel-diffusion" and "semanticodec" in notice
    row = next(m for m in M.list_models("diffusion") if m.name == "semanticodec")
    assert "package is not installed" in row.offline


BAD_FOLDERS = {  # what is wrong -> (how to make it, the file the one-line error must name)
    "missing decoder": (lambda r: fake_variant(r)["decoder"].unlink(), "semanticodec_tokenrate_100/decoder.ckpt"),
    "encoder of another rate": (lambda r: (fake_variant(r), fake_variant(r / "x", rate=50)[
        "encoder"].replace(r / "semanticodec_tokenrate_100" / "encoder.ckpt")), "token-rate-50 encoder"),
    "mismatched decoder": (lambda r: fake_variant(r, decoder_rate=50), "semanticodec_tokenrate_100/decoder.ckpt"),
    "corrupt decoder": (lambda r: fake_variant(r)["decoder"].write_bytes(b"not a checkpoint"),
                        "semanticodec_tokenrate_100/decoder.ckpt cannot be read"),
    "codebook of another shape": (lambda r: np.save(fake_variant(r)["codebook"], np.zeros((2048, 16), np.float32)),
                                  "codebook_2048_0.npy has shape (2048, 16)"),
    "no codebook": (lambda r: fake_variant(r)["codebook"].unlink(), "missing codebook_idx/"),
    "flat folder without encoder": (lambda r: fake_variant(r, flat=True)["encoder"].unlink(), "missing encoder.ckpt"),
    "empty folder": (lambda r: r.mkdir(), "missing semanticodec_tokenrate_100/encoder.ckpt"),
}


@pytest.mark.parametrize("case", list(BAD_FOLDERS))
def test_bad_checkpoint_folder_is_one_line_exit_2_naming_the_file_before_any_worker(case, corpus, tmp_path,
                                                                                   no_workers):
    make, named = BAD_FOLDERS[case]
    make(tmp_path / "sc")
    r = invoke("run", "--model", "semanticodec", "--checkpoint", tmp_path / "sc", "--corpus", corpus,
               "--out", tmp_path / "out", "--executor", "local")
    assert r.exit_code == 2, r.output
    assert len(r.output.strip().splitlines()) == 1 and named in r.output, r.output
    assert not (tmp_path / "out" / "manifest").exists()


def test_a_good_folder_passes_the_checks_in_both_layouts(tmp_path):
    fake_variant(tmp_path / "hub")
    fake_variant(tmp_path / "hub", rate=50, vocab=32768)
    SF.check_folder(tmp_path / "hub")
    assert SF.check_variant(tmp_path / "hub", 50, 32768)["encoder"].parent.name == "semanticodec_tokenrate_50"
    with pytest.raises(UsageError, match="missing semanticodec_tokenrate_25/encoder.ckpt"):
        SF.check_variant(tmp_path / "hub", 25, 4096)  # a variant that was not staged, named with its parameters
    fake_variant(tmp_path / "flat", rate=50, flat=True)
    SF.check_folder(tmp_path / "flat")
    book = SF.variant_files(tmp_path / "flat", 100, 4096)["codebook"]  # a rate-100 codebook beside rate-50 ckpts
    book.parent.mkdir(parents=True)
    np.save(book, np.zeros((2048, 768), np.float32))
    with pytest.raises(UsageError, match="token-rate-50 encoder, expected token rate 100"):
        SF.check_variant(tmp_path / "flat", 100, 4096)


def test_parameters_are_checked():
    for bad, match in (({"token_rate": 75}, "25, 50 or 100"), ({"semantic_vocab_size": 1000}, "4096"),
                       ({"ddim_steps": 0}, "ddim_steps"), ({"guidance_scale": 0}, "guidance_scale")):
        with pytest.raises(UsageError, match=match):
            get("semanticodec")(bad)


# ---- against the real package (runs only where it is installed; the README says where it ran) -----------------

@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """Random weights of the published token-rate-100 / 16384 variant in the hub layout (about 2.3 GB)."""
    torch.set_num_threads(1)
    return get("semanticodec").random_weights(tmp_path_factory.mktemp("semanticodec") / "semanticodec")


FAST = {"ddim_steps": 2}  # the DDIM step count changes nothing in the code path, only the time


@real_package
def test_real_package_store_path_invariants_and_seeds(weights, monkeypatch):
    monkeypatch.setenv("HARDSPOOF_MODELS", str(weights.parent))
    cls = get("semanticodec")
    assert cls.weights_location() == "store" and default_model("diffusion")[0] == "semanticodec"
    be = cls(FAST)
    assert be.device == torch.device("cpu") and be.codec.decoder.device == torch.device("cpu")
    files = SF.variant_files(weights, 100, 16384)
    assert be.checkpoint_sha256 == SF.files_sha256(files) and re.fullmatch(r"[0-9a-f]{64}", be.checkpoint_sha256)
    wav = speechlike(0.5, 16000, seed=3)
    a = be.reconstruct(wav, 16000, seed=7)
    assert a.shape == wav.shape and a.dtype == np.float32 and np.isfinite(a).all() and np.abs(a).max() <= 1
    assert np.array_equal(a, be.reconstruct(wav, 16000, seed=7)), "not deterministic for a seed"
    assert not np.array_equal(a, be.reconstruct(wav, 16000, seed=8)), "the seed does not reach the DDIM sampler"


@real_package
def test_real_package_long_clip_equals_the_upstream_file_based_call(weights, tmp_path, monkeypatch):
    """A 10.3 s clip (two 10.24 s encoder windows, two overlapping decoder windows): the back-end fed a tensor
    gives exactly what upstream `SemantiCodec(...)(filepath)` gives for the same file and seed, cut to length."""
    from semanticodec import SemantiCodec as Upstream

    flat = tmp_path / "flat"  # the upstream's own checkpoint_path layout, by links into the hub layout
    flat.mkdir()
    files = SF.variant_files(weights, 100, 16384)
    for role in ("encoder", "decoder"):
        (flat / files[role].name).symlink_to(files[role])
    (flat / "codebook_idx").symlink_to(weights / "codebook_idx")
    wav = speechlike(10.3, 16000, seed=5)
    be = get("semanticodec")(FAST, checkpoint=flat)
    ours = be.reconstruct(wav, 16000, seed=11)
    assert ours.shape == wav.shape and np.isfinite(ours).all()
    del be
    gc.collect()

    path = tmp_path / "clip.wav"
    sf.write(path, wav, 16000, subtype="FLOAT")
    # torchaudio >= 2.9 reads files only through torchcodec, which is not installed: the same samples via soundfile
    monkeypatch.setattr("torchaudio.load", lambda p: (torch.from_numpy(sf.read(p, dtype="float32")[0][None].copy()),
                                                      sf.info(p).samplerate))
    monkeypatch.chdir(tmp_path)  # the upstream __init__ may create ./pretrained
    upstream = Upstream(token_rate=100, semantic_vocab_size=16384, ddim_sample_step=FAST["ddim_steps"],
                        cfg_scale=2.0, checkpoint_path=str(flat))
    torch.manual_seed(11)
    with torch.inference_mode():
        theirs = np.asarray(upstream(str(path)), np.float32).reshape(-1)
    assert theirs.shape[0] >= wav.shape[0]
    assert np.array_equal(ours, np.clip(theirs[:wav.shape[0]], -1, 1))

"""reconstruct fit: a tiny mel-diffusion fit writes a loadable checkpoint, resumes, and rejects bad input."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from manifests.errors import UsageError
from reconstruct.cli_fit import fit
from reconstruct.fit import META_FILE, STATE_FILE, WEIGHTS_FILE, FitConfig, fit_mel_diffusion
from tests.conftest import write_corpus

torch.set_num_threads(1)

TINY = dict(batch_size=2, crop_frames=16, channels=(8, 16, 16), warmup_steps=1)


def tiny_fit(corpus: Path, out: Path, steps: int = 3, **kw) -> dict:
    return fit_mel_diffusion(FitConfig(corpus=str(corpus), out=str(out), steps=steps, **{**TINY, **kw}),
                             progress=False)


def test_fit_writes_a_checkpoint_folder(corpus, tmp_path):
    prov = tiny_fit(corpus, tmp_path / "ckpt")
    ckpt = tmp_path / "ckpt"
    for f in ("config.json", WEIGHTS_FILE, "scheduler/scheduler_config.json", META_FILE, STATE_FILE):
        assert (ckpt / f).is_file(), f
    meta = json.loads((ckpt / META_FILE).read_text())
    assert meta["features"]["std"] > 0 and meta["provenance"]["steps"] == 3 == prov["steps"]
    assert prov["n_clips"] == 2  # train split bona fide only (utt0, utt2)
    assert not list(tmp_path.glob(".ckpt.tmp-*"))  # temp folders renamed away


def test_fit_resumes_instead_of_restarting(corpus, tmp_path):
    out = tmp_path / "ckpt"
    tiny_fit(corpus, out, steps=2, checkpoint_every=1)
    first = torch.load(out / STATE_FILE, weights_only=False)
    prov = tiny_fit(corpus, out, steps=4, checkpoint_every=1)
    second = torch.load(out / STATE_FILE, weights_only=False)
    assert first["step"] == 2 and second["step"] == 4 == prov["steps"]
    # the optimizer state carried over: Adam's step count is 4, not 2
    assert int(next(iter(second["optimizer"]["state"].values()))["step"]) == 4
    assert tiny_fit(corpus, out, steps=4)["steps"] == 4  # already done: nothing to do


def test_fit_without_bonafide_is_a_usage_error(tmp_path):
    root = write_corpus(tmp_path / "c", n_bonafide=0, n_spoof=2)
    with pytest.raises(UsageError, match="no bona fide"):
        tiny_fit(root, tmp_path / "ckpt")


def test_fit_empty_corpus_is_a_usage_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError):
        tiny_fit(tmp_path / "empty", tmp_path / "ckpt")


def test_fit_refuses_an_unrelated_or_unwritable_out(corpus, tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("x")
    with pytest.raises(UsageError, match="non-empty"):
        tiny_fit(corpus, tmp_path / "taken")
    (tmp_path / "afile").write_text("x")
    with pytest.raises(UsageError, match="not a folder|not writable"):
        tiny_fit(corpus, tmp_path / "afile")
    with pytest.raises(UsageError, match="not writable"):
        tiny_fit(corpus, tmp_path / "afile" / "ckpt")


def test_cli_fit_bad_corpus_exits_2(tmp_path):
    res = CliRunner().invoke(fit, ["--method", "diffusion", "--corpus", str(tmp_path / "nope"),
                                   "--out", str(tmp_path / "ckpt")])
    assert res.exit_code == 2 and "corpus not found" in res.output


def test_cli_fit_output_feeds_reconstruct_run(corpus, tmp_path):
    """`reconstruct fit` then `reconstruct run --method diffusion --model mel-diffusion --checkpoint`."""
    import pyarrow.parquet as pq

    from reconstruct.cli import main

    ckpt = tmp_path / "ckpt"
    res = CliRunner().invoke(fit, ["--method", "diffusion", "--corpus", str(corpus), "--out", str(ckpt),
                                   "--steps", "1", "--batch-size", "2"])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(main, ["run", "--method", "diffusion", "--model", "mel-diffusion", "--checkpoint",
                                    str(ckpt), "--corpus", str(corpus), "--out", str(tmp_path / "out"),
                                    "--executor", "local", "--limit", "2", "--param", "steps=4",
                                    "--param", "strength=0.5", "--param", "gl_iters=4"])
    assert res.exit_code == 0, res.output
    table = pq.read_table(tmp_path / "out" / "manifest").to_pylist()
    recon = [r for r in table if r["kind"] == "reconstruction"]
    assert recon and all(r["status"] == "ok" and r["model"] == "mel-diffusion" and r["method"] == "diffusion"
                         for r in recon)


def test_resume_with_another_model_shape_is_a_usage_error(corpus, tmp_path):
    tiny_fit(corpus, tmp_path / "ckpt", steps=1)
    with pytest.raises(UsageError, match="same model shape"):
        tiny_fit(corpus, tmp_path / "ckpt", steps=2, channels=(8, 8, 16))

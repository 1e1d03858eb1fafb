"""ONNX export: parity with PyTorch through the same scoring (20 clips of different lengths), the metadata that
makes the .onnx file enough to score, and the CLI."""
from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from click.testing import CliRunner

from detector import checkpoint
from detector.cli import main
from detector.config import DataConfig, ModelConfig, RunConfig
from detector.model.detector import Detector
from detector.scoring.onnx_export import OnnxDetector, export_onnx, require
from detector.scoring.windows import score_paths
from manifests.errors import UsageError
from tests.conftest import speechlike

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

CROP = 8000  # 0.5 s windows: 20 clips of 0.06-2.3 s cover padded, single, several and tail-aligned windows


def make_checkpoint(folder: Path, frontend: str) -> Path:
    torch.manual_seed(3)
    cfg = RunConfig(data=DataConfig(crop=CROP, augment=False),
                    model=ModelConfig(frontend=frontend, backend="aasist", aasist_size="small", aggregation="attn",
                                      tiny_hidden=16, proj_dim=16, gat_dim=8, dropout=0.0))
    model = Detector(cfg.model)
    with torch.no_grad():  # random, not freshly initialised, batch-norm statistics: logits that differ per clip
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d | torch.nn.BatchNorm1d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    checkpoint.save(folder / "final", model, cfg, {"threshold": 0.05, "dev_eer": 0.1})
    return folder


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> list[str]:
    root = tmp_path_factory.mktemp("clips")
    paths = []
    for k, seconds in enumerate(np.linspace(0.06, 2.3, 20)):
        path = root / f"clip{k:02d}.flac"
        sf.write(path, speechlike(float(seconds), seed=k, f0=100 + 7 * k), 16000)
        paths.append(str(path))
    return paths


@pytest.mark.parametrize("frontend", ["lfcc", "tiny", "ge2e"])
def test_onnx_scores_match_pytorch(frontend, clips, tmp_path):
    if frontend == "ge2e":
        from detector.model.frontends.ge2e import weights_path

        try:
            weights_path()  # the weights ship in resemblyzer's wheel (the ge2e extra, part of dev)
        except UsageError:
            pytest.skip("resemblyzer (the ge2e weights) is not installed")
    run = make_checkpoint(tmp_path / "run", frontend)
    report = export_onnx(run, tmp_path / "model.onnx")
    assert report["max_abs_diff"] <= 1e-4 and report["length_axis"] in ("dynamic", "fixed")
    model, cfg, _ = checkpoint.load(run)
    want, err_pt, _ = score_paths(model.cpu(), clips, cfg.data.crop, batch_size=4)
    got, err_onnx, _ = score_paths(OnnxDetector(tmp_path / "model.onnx"), clips, cfg.data.crop, batch_size=3)
    assert not err_pt and not err_onnx
    assert np.abs(got - want).max() <= 1e-4, np.abs(got - want).max()
    assert want.std() > 1e-4  # the clips get different scores: the comparison is not of constants


def test_onnx_file_is_enough_to_score(clips, tmp_path):
    run = make_checkpoint(tmp_path / "run", "lfcc")
    invoke = lambda *a: CliRunner().invoke(main, [str(x) for x in a])  # noqa: E731
    r = invoke("export", "--checkpoint", run, "--out", tmp_path / "m.onnx")
    assert r.exit_code == 0 and "max |logit difference| to PyTorch" in r.output, r.output
    scorer = OnnxDetector(tmp_path / "m.onnx")
    assert scorer.config.data.crop == CROP and scorer.meta["threshold"] == 0.05
    folder = Path(clips[0]).parent
    for ckpt, out in ((tmp_path / "m.onnx", "onnx.tsv"), (run, "pt.tsv")):
        r = invoke("score", "--checkpoint", ckpt, "--input", folder, "--out", tmp_path / out, "--no-progress")
        assert r.exit_code == 0 and "scored 20 file(s)" in r.output, r.output
    read = lambda name: list(csv.DictReader((tmp_path / name).read_text().splitlines()[1:], delimiter="\t"))  # noqa: E731
    onnx_rows, pt_rows = read("onnx.tsv"), read("pt.tsv")
    assert [r["id"] for r in onnx_rows] == [r["id"] for r in pt_rows]
    assert max(abs(float(a["score"]) - float(b["score"])) for a, b in zip(onnx_rows, pt_rows)) <= 2e-6
    assert [r["decision"] for r in onnx_rows] == [r["decision"] for r in pt_rows]


def test_export_errors(tmp_path):
    run = make_checkpoint(tmp_path / "run", "lfcc")
    r = CliRunner().invoke(main, ["export", "--checkpoint", str(run), "--out", str(tmp_path / "m.pt")])
    assert r.exit_code == 2 and ".onnx" in r.output
    (tmp_path / "bogus.onnx").write_bytes(b"not a model")
    r = CliRunner().invoke(main, ["score", "--checkpoint", str(tmp_path / "bogus.onnx"), "--input", str(tmp_path),
                                  "--out", str(tmp_path / "s.tsv")])
    assert r.exit_code == 2 and "cannot load ONNX model" in r.output


def test_missing_onnxruntime_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(UsageError, match=r"hardspoof\[onnx\]"):
        require("onnxruntime")

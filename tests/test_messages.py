"""Help and messages that tell the truth (issue 26, item 8): a user sees what concerns them, and nothing else.

One test per message: `detector train --help` names every front-end; offline, the xlsr staging hint names
the CPU front-ends; Ray's "constructor arguments in the object store" line is gone from runs; training
raises no "lr_scheduler.step() before optimizer.step()" warning; `detector export` prints no "torchvision is
not installed" lines.
"""
from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from detector.cli import main as detector_main
from detector.model.frontends import CPU_FRONTENDS
from manifests.raystart import quiet_ray_notices

torch.set_num_threads(1)
NOTICE = "has constructor arguments in the object store and max_restarts > 0"


@pytest.fixture(scope="module")
def demo_manifest(tmp_path_factory) -> Path:
    from manifests.cli import main as manifests_main

    out = tmp_path_factory.mktemp("demo") / "demo.parquet"
    r = CliRunner().invoke(manifests_main, ["import", "--corpus", "demo", "--out", str(out)])
    assert r.exit_code == 0, r.output
    return out


def test_train_help_lists_every_frontend():
    r = CliRunner().invoke(detector_main, ["train", "--help"], terminal_width=400)
    assert r.exit_code == 0
    help_text = " ".join(r.output.split())
    for name in ("xlsr", "hf:<hub-id-or-folder>", *CPU_FRONTENDS):
        assert f" {name} " in help_text or f"{name} |" in help_text, name


def test_offline_xlsr_hint_names_the_cpu_frontends(demo_manifest, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HARDSPOOF_MODELS", str(tmp_path / "empty-store"))
    r = CliRunner().invoke(detector_main, ["train", "--manifest", str(demo_manifest), "--out", str(tmp_path / "run"),
                                           "--frontend", "xlsr", "--no-progress"])
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    assert "huggingface-cli download facebook/wav2vec2-xls-r-300m" in r.output
    assert f"--frontend {'|'.join(CPU_FRONTENDS)}" in r.output


def test_the_notice_filter_drops_only_its_lines(capfd):
    with quiet_ray_notices():
        os.write(2, f"[2026-12-07 23:18:42,423 E 1 1] core_worker.cc:2465: Actor X {NOTICE}. If ...\n".encode())
        os.write(2, b"progress 1/2\r")
        os.write(2, b"[a C++ line that stays]\nlast words")
        print("python's own stderr", file=sys.stderr)
    err = capfd.readouterr().err
    assert NOTICE not in err
    assert "progress 1/2\r" in err and "[a C++ line that stays]\n" in err and "last words" in err
    assert "python's own stderr" in err


def test_a_ray_run_prints_no_constructor_notice(tmp_path):
    cmd = [sys.executable, "-m", "reconstruct.cli", "run", "--model", "griffinlim", "--param", "n_iter=4",
           "--corpus", "demo", "--out", str(tmp_path / "out"), "--limit", "2", "--workers", "1", "--executor", "ray"]
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", HARDSPOOF_NO_BAR="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert NOTICE not in proc.stderr and "core_worker" not in proc.stderr, proc.stderr


def test_training_raises_no_scheduler_warning(demo_manifest, tmp_path):
    """The warning's one cause in the loop: an epoch that took no optimizer step (here every train clip is
    unreadable, so every batch is masked out) still stepped the lr schedule."""
    import manifests

    rows = manifests.read(demo_manifest).to_pylist()
    for i, row in enumerate(rows):
        if row["split"] == "train":
            row["path"] = str(tmp_path / f"garbage-{i}.wav")
            Path(row["path"]).write_bytes(b"not audio" * 20)
    manifests.write(rows, tmp_path / "unreadable-train.parquet")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = CliRunner().invoke(detector_main, ["train", "--manifest", str(tmp_path / "unreadable-train.parquet"),
                                               "--out", str(tmp_path / "run"), "--frontend", "lfcc", "--backend",
                                               "linear", "--epochs", "1", "--crop", "8000", "--no-progress"])
    assert r.exit_code == 0, r.output
    assert "unreadable clip(s) skipped" in r.output
    assert not [w for w in caught if "lr_scheduler.step()" in str(w.message)]


def test_export_prints_no_torchvision_lines(demo_manifest, tmp_path, capfd):
    run = tmp_path / "run"
    r = CliRunner().invoke(detector_main, ["train", "--manifest", str(demo_manifest), "--out", str(run), "--frontend",
                                           "lfcc", "--backend", "linear", "--epochs", "1", "--max-steps", "1",
                                           "--crop", "8000", "--no-progress"])
    assert r.exit_code == 0, r.output
    capfd.readouterr()
    r = CliRunner().invoke(detector_main, ["export", "--checkpoint", str(run), "--format", "onnx",
                                           "--out", str(tmp_path / "m.onnx")])
    assert r.exit_code == 0, r.output
    seen = capfd.readouterr()
    everything = r.output + seen.out + seen.err
    assert "wrote" in r.output and "torchvision" not in everything, everything

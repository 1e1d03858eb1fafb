"""kill -9 during `detector train`, then the same command again: nothing lost, nothing twice, and the
result is bit-identical to a run that was never interrupted (every RNG state is saved with the resume state)."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import load_file


def test_kill_9_mid_training_then_resume(manifest: Path, tmp_path: Path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "detector.cli", "train", "--manifest", str(manifest), "--out", str(out),
           "--frontend", "tiny", "--backend", "linear", "--tiny-hidden", "16", "--crop", "8000", "--batch-size", "2",
           "--epochs", "6", "--patience", "6", "--no-augment", "--no-progress", "--loss", "ce"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 180
    log = out / "log.csv"
    while time.time() < deadline and proc.poll() is None:
        if log.is_file() and len(log.read_text().splitlines()) >= 3:  # header + 2 epochs
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(log.read_text().splitlines()) - 1
    assert 2 <= done < 6, "the kill should land mid-run"
    assert not (out / "final").exists()
    for f in (out / "epochs").glob("*.safetensors"):
        load_file(str(f))  # every snapshot on disk is complete
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    epochs = [line.split(",")[0] for line in log.read_text().splitlines()[1:]]
    assert epochs == [str(e) for e in range(6)]  # each epoch once, none redone
    assert (out / "final" / "model.safetensors").is_file()
    whole = tmp_path / "whole"
    r = subprocess.run([*cmd[:cmd.index("--out") + 1], str(whole), *cmd[cmd.index("--out") + 2:]], env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    resumed, uninterrupted = (load_file(str(d / "final" / "model.safetensors")) for d in (out, whole))
    assert resumed.keys() == uninterrupted.keys()
    for k in resumed:
        assert torch.equal(resumed[k], uninterrupted[k]), k
    strip = lambda d: [ln.split(",")[:4] + ln.split(",")[5:] for ln in (d / "log.csv").read_text().splitlines()]  # noqa: E731
    assert strip(out) == strip(whole), "same losses and dev EERs epoch by epoch (wall seconds aside)"


def test_resume_refuses_other_manifests_or_data_config(manifest: Path, tmp_path: Path):
    import manifests
    from click.testing import CliRunner

    from detector.cli import main

    base = ["train", "--manifest", str(manifest), "--out", str(tmp_path / "run"), "--frontend", "tiny", "--backend",
            "linear", "--tiny-hidden", "16", "--crop", "8000", "--batch-size", "2", "--epochs", "1", "--max-steps", "1",
            "--no-augment", "--no-progress"]
    assert CliRunner().invoke(main, base).exit_code == 0
    other = manifests.write(manifests.read(manifest).to_pylist()[:-1], tmp_path / "other.parquet")
    r = CliRunner().invoke(main, [*base, "--manifest", str(other), "--epochs", "2"])
    assert r.exit_code == 2 and "trained with other manifests" in r.output and "--fresh" in r.output
    r = CliRunner().invoke(main, [*base, "--crop", "8800", "--epochs", "2"])
    assert r.exit_code == 2 and "a different data config (crop: 8000 -> 8800)" in r.output
    r = CliRunner().invoke(main, [*base, "--epochs", "2", "--num-workers", "0", "--lr", "0.001"])
    assert r.exit_code == 0, r.output  # training options (epochs, lr) and num_workers may change on resume
    r = CliRunner().invoke(main, [*base, "--crop", "8800", "--epochs", "2", "--fresh"])
    assert r.exit_code == 0, r.output

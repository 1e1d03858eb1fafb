"""kill -9 during `detector train`, then the same command again: nothing lost, nothing twice."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

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

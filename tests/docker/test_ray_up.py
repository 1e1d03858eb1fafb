"""The Slurm Ray bring-up, run for real on this machine: head + one worker from slurm/ray-up.sh, a tiny job, stop.

The same functions and `ray start` lines as reconstruct.sbatch, without srun (RAY_UP_LAUNCH empty),
on 127.0.0.1 with ports and a temp dir of their own, so an existing Ray instance is left alone.
"""
from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.conftest import write_corpus
from tests.docker.repo import DOCKER

BIN = Path(sys.executable).parent
SCRIPT = r"""
set -euo pipefail
source "$RAY_UP_SH"
trap 'ray_stop 5' EXIT
common=(--num-cpus=1 --num-gpus=0 --object-store-memory=150000000)
ray_head_start localhost 127.0.0.1 "$PORT" "${common[@]}" --temp-dir="$RAY_TMP" \
  --dashboard-agent-listen-port="$AGENT_HEAD" --min-worker-port="$WPORT_HEAD" --max-worker-port=$((WPORT_HEAD + 99))
ray_worker_start localhost "127.0.0.1:$PORT" --node-ip-address=127.0.0.1 "${common[@]}" \
  --dashboard-agent-listen-port="$AGENT_WORKER" --min-worker-port="$WPORT_WORKER" --max-worker-port=$((WPORT_WORKER + 99))
ray_wait_nodes "127.0.0.1:$PORT" 2 120
reconstruct run --ray-address "127.0.0.1:$PORT" --model griffinlim --param n_iter=2 \
  --corpus "$CORPUS" --out "$OUT" --workers 1
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _free_range(n: int = 100) -> int:
    """Start of n consecutive ports that are free right now (Ray's worker port range)."""
    for _ in range(50):
        base = random.randrange(20000, 30000 - n)
        try:
            for p in range(base, base + n, 10):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
    pytest.skip("no free port range for Ray workers")


def _kill_leftovers(marker: str) -> None:
    """SIGKILL processes whose command line names our private temp dir (ours by construction)."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if marker in (proc / "cmdline").read_bytes().decode(errors="replace"):
                os.kill(int(proc.name), signal.SIGKILL)
        except (OSError, ProcessLookupError):
            pass


@pytest.mark.timeout(240)
def test_ray_up_head_worker_and_job(tmp_path):
    if not (BIN / "ray").exists() or not (BIN / "reconstruct").exists():
        pytest.skip("the ray / reconstruct console scripts are not installed next to this python")
    import manifests

    corpus = write_corpus(tmp_path / "corpus") / "protocol.csv"
    out = tmp_path / "out"
    ray_tmp = tempfile.mkdtemp(prefix="rayup", dir="/tmp")   # short: Ray's socket paths must fit 107 bytes
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}   # no RAY_ADDRESS etc.
    env.update(PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", RAY_UP_SH=str(DOCKER / "slurm" / "ray-up.sh"),
               RAY_UP_DIR=str(tmp_path / "ray-up"), RAY_TMP=ray_tmp, CORPUS=str(corpus), OUT=str(out),
               PORT=str(_free_port()), AGENT_HEAD=str(_free_port()), AGENT_WORKER=str(_free_port()),
               WPORT_HEAD=str(_free_range()), HF_HUB_OFFLINE="1", HARDSPOOF_NO_BAR="1")
    env["WPORT_WORKER"] = str(int(env["WPORT_HEAD"]) + 100)
    proc = subprocess.Popen(["bash", "-c", SCRIPT], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        log, _ = proc.communicate(timeout=200)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)       # the script's EXIT trap runs ray_stop
        log, _ = proc.communicate(timeout=30)
        pytest.fail(f"the Ray bring-up + job did not finish in time:\n{log[-4000:]}")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        _kill_leftovers(ray_tmp)
        shutil.rmtree(ray_tmp, ignore_errors=True)
    logs = "\n".join(f"--- {p.name}\n{p.read_text()[-1500:]}" for p in sorted((tmp_path / "ray-up").glob("*.log")))
    assert proc.returncode == 0, f"{log[-4000:]}\n{logs}"
    assert "2/2 Ray nodes up" in log and "Ray stopped" in log, log[-4000:]
    table = manifests.read(out / "manifest").to_pylist()
    recon = [r for r in table if r["kind"] == "reconstruction"]
    assert len(recon) == 6 and all(r["status"] == "ok" and r["model"] == "griffinlim" for r in recon), recon
    assert all(Path(r["path"]).is_file() for r in recon)

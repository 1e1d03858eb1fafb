"""The Slurm scripts and ray-up.sh are valid bash (and clean under shellcheck when it is installed)."""
from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from tests.docker.repo import DOCKER, ROOT

SHELL_FILES = sorted([*DOCKER.rglob("*.sbatch"), *DOCKER.rglob("*.sh")])
RAY_UP = DOCKER / "slurm" / "ray-up.sh"


def test_there_are_scripts():
    assert {p.name for p in SHELL_FILES} >= {"reconstruct.sbatch", "train.sbatch", "ray-up.sh"}


@pytest.mark.parametrize("path", SHELL_FILES, ids=lambda p: p.name)
def test_bash_syntax(path):
    r = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("path", SHELL_FILES, ids=lambda p: p.name)
def test_shellcheck(path):
    if not shutil.which("shellcheck"):
        pytest.skip("shellcheck is not installed (apt-get install shellcheck); bash -n still ran")
    r = subprocess.run(["shellcheck", "-x", "--shell=bash", str(path.relative_to(ROOT))], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_ray_up_defines_the_functions():
    r = subprocess.run(["bash", "-c", 'source "$1" && declare -F', "_", str(RAY_UP)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    defined = set(re.findall(r"declare -f (\w+)", r.stdout))
    assert {"ray_head_start", "ray_worker_start", "ray_wait_nodes", "ray_stop"} <= defined


def test_reconstruct_sbatch_uses_ray_up_and_stops_ray():
    text = (DOCKER / "slurm" / "reconstruct.sbatch").read_text()
    assert re.search(r"^source .*ray-up\.sh", text, re.M), "the sbatch must source ray-up.sh"
    for fn in ("ray_head_start", "ray_worker_start", "ray_wait_nodes"):
        assert re.search(rf"^\s*{fn} ", text, re.M), f"{fn} is not called"
    assert re.search(r"^trap \w+ EXIT", text, re.M) and "ray_stop" in text, "Ray must be stopped on exit"
    assert re.search(r"^#SBATCH --nodes=", text, re.M)


def test_train_sbatch_launches_one_agent_per_node():
    text = (DOCKER / "slurm" / "train.sbatch").read_text()
    assert re.search(r"^srun .*--ntasks-per-node=1", text, re.M), "one torchrun agent per node"
    assert re.search(r"^#SBATCH --ntasks-per-node=1", text, re.M)

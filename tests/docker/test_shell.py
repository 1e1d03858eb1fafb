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


BUILD_IMAGE = DOCKER / "build-image.sh"


def _fake_build(tmp_path, **env) -> list[str]:
    """Run build-image.sh against a stand-in `podman` that records its build command line."""
    engine = tmp_path / "bin" / "podman"
    engine.parent.mkdir()
    engine.write_text('#!/bin/bash\n'
                      'case "$1 $2" in\n'
                      '  "image inspect") [[ $* == *--format* ]] && echo 1000000; exit 0 ;;\n'
                      'esac\n'
                      'printf "%s\\n" "$@" > "$(dirname "$0")/../build-args"\n')
    engine.chmod(0o755)
    r = subprocess.run(["bash", str(BUILD_IMAGE)], capture_output=True, text=True, timeout=60,
                       env={"PATH": f"{engine.parent}:/usr/bin:/bin", "ENGINE": "podman", "TORCH_INDEX": "", **env})
    assert r.returncode == 0, r.stdout + r.stderr
    return (tmp_path / "build-args").read_text().splitlines()


@pytest.mark.parametrize("dockerfile, base_arg, tag", [("docker/Dockerfile", "PYTHON_IMAGE", "hardspoof:cpu"),
                                                       ("docker/Dockerfile.cuda", "CUDA_IMAGE", "hardspoof:cuda")])
def test_build_image_builds_either_dockerfile(tmp_path, dockerfile, base_arg, tag):
    """The script passes the base as the Dockerfile's own base ARG, tags by flavour, reads that file's ignorefile."""
    args = _fake_build(tmp_path, DOCKERFILE=dockerfile, BASE_IMAGE="localhost/base:x", MODELS="", FRONTENDS="",
                       CA_BUNDLE="/etc/ssl/certs/ca-certificates.crt")
    assert args[args.index("-f") + 1] == str(ROOT / dockerfile)
    assert args[args.index("-t") + 1] == tag
    build_args = [args[i + 1] for i, a in enumerate(args) if a == "--build-arg"]
    assert f"{base_arg}=localhost/base:x" in build_args and "TORCH_INDEX=" in build_args
    assert {"MODELS=", "FRONTENDS="} <= set(build_args)
    assert f"ARG {base_arg}=" in (ROOT / dockerfile).read_text()
    assert args[args.index("--ignorefile") + 1] == str(ROOT / f"{dockerfile}.dockerignore")
    assert args[:2] == ["--runtime", "runc"] and "nofile=20000:20000" in args
    assert "CA_BUNDLE=/run/build-ca.crt" in build_args
    assert args[-1] == str(ROOT)


def test_build_image_refuses_a_dockerfile_without_the_base_arg(tmp_path):
    other = tmp_path / "Dockerfile.other"
    other.write_text("FROM scratch\n")
    r = subprocess.run(["bash", str(BUILD_IMAGE)], capture_output=True, text=True, timeout=60,
                       env={"PATH": "/usr/bin:/bin", "ENGINE": "false", "DOCKERFILE": str(other)})
    assert r.returncode == 2 and "no ARG PYTHON_IMAGE" in r.stderr, r.stderr

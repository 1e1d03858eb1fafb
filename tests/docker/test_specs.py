"""Cluster specs parse, and every CLI line in them passes the CLI's own parsing (reconstruct: a real --dry-run)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import write_corpus
from tests.docker import crd
from tests.docker.commands import (cli_lines, comments, expand_shell, resolve, shell_knobs, split,
                                   substitute_paths, torchrun_lines, yaml_strings)
from tests.docker.repo import DOCKER, ROOT

YAMLS = sorted(DOCKER.rglob("*.yaml"))
SCRIPTS = sorted(DOCKER.rglob("*.sbatch"))
# Values a running job computes (node names, counts); everything else comes from the scripts' knobs.
COMPUTED = {"HEAD": "10.0.0.1", "HEAD_NODE": "node001", "WORKERS": "8", "SLURM_JOB_NUM_NODES": "2",
            "SLURM_JOB_ID": "4242", "HOME": "/home/user"}


def _load(path: Path) -> dict:
    doc = yaml.safe_load(path.read_text())
    assert isinstance(doc, dict), f"{path}: not a YAML mapping"
    return doc


def _script_values(text: str) -> dict[str, str]:
    values = {**shell_knobs(text), **COMPUTED}
    if "MANIFESTS" in values:
        values["MANIFEST_ARGS[@]"] = " ".join(f"--manifest {m}" for m in values["MANIFESTS"].split())
    return values


def command_lines() -> list[tuple[str, str]]:
    """(file, command line with shell variables expanded) for every reconstruct/detector/torchrun line."""
    out = []
    for path in YAMLS:
        text = path.read_text()
        for line in [*cli_lines(comments(text)), *(c for s in yaml_strings(_load(path)) for c in cli_lines(s))]:
            out.append((path.name, line))
    for path in SCRIPTS:
        text = path.read_text()
        values = _script_values(text)
        for line in [*cli_lines(text), *torchrun_lines(text)]:
            out.append((path.name, expand_shell(line, values)))
    return out


LINES = command_lines()


def test_every_spec_has_its_commands():
    files = {f for f, _ in LINES}
    assert {"ray-cluster.yaml", "rayjob.yaml", "reconstruct.sbatch", "train.sbatch"} <= files, files


@pytest.mark.parametrize("path", YAMLS, ids=lambda p: p.name)
def test_yaml_parses(path):
    _load(path)


def test_ray_cluster_config_passes_rays_schema():
    pytest.importorskip("jsonschema")
    try:
        from ray.autoscaler._private.util import prepare_config, validate_config
    except ImportError as e:                     # a private module of Ray; moved in some release
        pytest.skip(f"Ray's cluster-config validator is not importable here ({e})")

    config = _load(DOCKER / "ray-cluster.yaml")
    validate_config(prepare_config(config))
    # The image's ENTRYPOINT is `reconstruct`; the launcher starts containers with `bash`.
    assert '--entrypoint ""' in config["docker"]["run_options"]
    assert config["docker"]["image"] and "--gpus all" in config["docker"]["worker_run_options"]
    assert any("/data" in o for o in config["docker"]["run_options"]), "no shared /data mount"


def test_rayjob_shape():
    job = _load(DOCKER / "rayjob.yaml")
    assert (job["apiVersion"], job["kind"]) == ("ray.io/v1", "RayJob")
    spec = job["spec"]
    argv = split(spec["entrypoint"])
    assert argv[:2] == ["reconstruct", "run"] and argv[argv.index("--ray-address") + 1] == "auto"
    assert {"--gpus-per-worker", "--corpus", "--out"} <= set(argv)
    cluster = spec["rayClusterSpec"]
    groups = [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]
    for group in groups:
        pod = group["template"]["spec"]
        claims = {v["name"] for v in pod["volumes"] if "persistentVolumeClaim" in v}
        for c in pod["containers"]:
            mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
            assert mounts.get("/data") in claims, f"{c['name']}: /data is not the PVC"
    gpus = [c["resources"]["limits"].get("nvidia.com/gpu") for g in cluster["workerGroupSpecs"]
            for c in g["template"]["spec"]["containers"]]
    assert all(gpus), "every worker group must ask for GPUs"


def test_rayjob_passes_the_kuberay_crd_schema():
    """docker/rayjob.yaml against the vendored RayJob CRD schema (docker/schemas/), strict like kubectl."""
    pytest.importorskip("jsonschema")
    job = _load(DOCKER / "rayjob.yaml")
    assert crd.errors("rayjobs", job) == []


def test_rayjob_cluster_spec_passes_the_raycluster_crd_schema():
    """The RayJob's rayClusterSpec, as a RayCluster of its own, against the vendored RayCluster CRD schema."""
    pytest.importorskip("jsonschema")
    job = _load(DOCKER / "rayjob.yaml")
    cluster = {"apiVersion": "ray.io/v1", "kind": "RayCluster", "metadata": {"name": "hardspoof"},
               "spec": job["spec"]["rayClusterSpec"]}
    assert crd.errors("rayclusters", cluster) == []


@pytest.mark.parametrize("mutate,where", [
    (lambda j: j["spec"].update(shutdownAfterJobFinish=True), "spec"),               # misspelt field
    (lambda j: j["spec"].update(backoffLimit="2"), "spec.backoffLimit"),            # wrong type
    (lambda j: j["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]
     ["resources"]["limits"].update(cpu="eight"), "limits.cpu"),                  # not a quantity
    (lambda j: j["spec"]["rayClusterSpec"]["headGroupSpec"].pop("template"), "headGroupSpec"),  # required
], ids=["unknown-field", "wrong-type", "bad-quantity", "missing-required"])
def test_the_crd_check_catches_broken_specs(mutate, where):
    """The schema check is not vacuous: each kind of mistake in rayjob.yaml is reported at its place."""
    pytest.importorskip("jsonschema")
    job = _load(DOCKER / "rayjob.yaml")
    mutate(job)
    found = crd.errors("rayjobs", job)
    assert any(where in e for e in found), found


@pytest.fixture(scope="module")
def generated_corpus(tmp_path_factory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("docker-corpus")) / "protocol.csv"


@pytest.mark.parametrize("where,line", [x for x in LINES if x[1].startswith("reconstruct ")],
                         ids=lambda x: x if isinstance(x, str) and not x.startswith("reconstruct") else None)
def test_reconstruct_lines_dry_run(where, line, generated_corpus, tmp_path):
    """The exact command, data paths swapped for a generated corpus and a temp folder, plus --dry-run."""
    from click.testing import CliRunner

    from reconstruct.cli import main

    argv = split(line)
    assert argv[:2] == ["reconstruct", "run"], f"{where}: {line}"
    args = substitute_paths(argv[1:], {"--corpus": str(generated_corpus), "--out": str(tmp_path / "out")},
                            "/data/", tmp_path)
    result = CliRunner().invoke(main, [*args, "--dry-run"])
    assert result.exit_code == 0, f"{where}: {line}\n{result.output}"
    assert "plan:" in result.output and "reconstructions to do" in result.output
    assert not (tmp_path / "out").exists(), "a dry run must not write"


@pytest.mark.parametrize("where,line", [x for x in LINES if not x[1].startswith("reconstruct ")],
                         ids=lambda x: x if isinstance(x, str) and "/" not in x and " " not in x else None)
def test_detector_lines_parse(where, line, tmp_path):
    from torch.distributed.run import get_args_parser

    from detector.cli import main

    argv = split(line)
    if argv[0] == "detector":
        resolve(main, substitute_paths(argv[1:], {}, "/data/", tmp_path))
        return
    launcher = argv.index("torch.distributed.run") + 1 if "torch.distributed.run" in argv else 1
    args = get_args_parser().parse_args(argv[launcher:])
    assert args.rdzv_backend == "c10d" and args.rdzv_endpoint and args.nnodes and args.nproc_per_node
    assert args.module and args.training_script == "detector.cli", f"{where}: run the detector CLI module"
    ctx = resolve(main, substitute_paths(args.training_script_args, {}, "/data/", tmp_path))
    assert ctx.info_name == "train" and ctx.params["out"]


def test_detector_module_is_runnable():
    """torchrun -m detector.cli needs `python -m detector.cli` to be the CLI."""
    r = subprocess.run([sys.executable, "-m", "detector.cli", "train", "--help"], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "--manifest" in r.stdout, r.stderr

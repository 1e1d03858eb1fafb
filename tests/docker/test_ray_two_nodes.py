"""A two-node Ray cluster on this machine loses a node mid-run (issue 30).

Head and second node (1 CPU each, the second with a resource of its own) run as separate
`ray start --block` processes (tests/docker/raycluster.py). `reconstruct run --ray-address` and
then `detector score --executor ray --ray-address` start against both nodes; once some of the
work is done, the second node's raylet is SIGKILLed. Acceptance: the run finishes on the head,
or a re-run (the documented way to resume) completes it; afterwards every clip is in the output
exactly once and no temp file is left. Skips where two nodes cannot start.
"""
from __future__ import annotations

import csv
import io
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Callable

import pytest

import manifests
from tests.conftest import write_corpus
from tests.docker.raycluster import BIN, LocalRayCluster

N_BONAFIDE, N_SPOOF = 18, 6                       # 24 clips of 1 s
GRIFFINLIM = ["--model", "griffinlim", "--param", "n_iter=48"]
TINY = ["--frontend", "tiny", "--backend", "linear", "--tiny-hidden", "16", "--crop", "8000", "--batch-size", "2",
        "--epochs", "1", "--max-steps", "2", "--no-augment", "--no-progress"]
# `detector score` with small shards, so that a 48-clip run has many shards spread over both nodes.
SCORE = ("import sys; from detector.scoring import ray_executor; ray_executor.SHARD = int(sys.argv[1]); "
         "from detector.cli import main; sys.argv[1:2] = []; main()")
RUN_TIMEOUT_S = 60


def run_and_crash(cluster: LocalRayCluster, cmd: list[str], progress: Callable[[], int], kill_at: int,
                  cwd: Path) -> tuple[int | None, str, bool]:
    """Start cmd; SIGKILL the second node's raylet once progress() >= kill_at; wait up to RUN_TIMEOUT_S.
    Returns (exit code or None if it had to be stopped, output, whether the kill happened mid-run)."""
    proc = subprocess.Popen(cmd, env=cluster.env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    killed, end = False, time.monotonic() + RUN_TIMEOUT_S
    try:
        while proc.poll() is None and time.monotonic() < end:
            if not killed and progress() >= kill_at:
                cluster.kill_raylet("second")
                killed = True
            time.sleep(0.2)
        if proc.poll() is None:                   # stuck waiting for the lost node: stop it, a re-run resumes
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        out = proc.communicate()[0]
        return (proc.returncode if time.monotonic() < end else None), out, killed
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def temp_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp") or p.name.endswith(".partial.parquet")]


def read_scores(path: Path) -> list[dict]:
    body = path.read_text().split("\n", 1)[1]     # line 1 is the comment
    return list(csv.DictReader(io.StringIO(body, newline=""), delimiter="\t"))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A tiny detector run folder, trained in-process before any Ray node starts."""
    from click.testing import CliRunner

    from detector.cli import main
    from tests.detector.conftest import make_manifest

    root = tmp_path_factory.mktemp("det")
    r = CliRunner().invoke(main, ["train", "--manifest", str(make_manifest(root / "train")), "--out",
                                  str(root / "run"), *TINY])
    assert r.exit_code == 0, r.output
    return root / "run"


@pytest.mark.timeout(300)
def test_two_node_cluster_loses_a_node_and_the_output_is_whole(tmp_path, checkpoint):
    if not (BIN / "ray").exists() or not (BIN / "reconstruct").exists():
        pytest.skip("the ray / reconstruct console scripts are not installed next to this python")
    corpus = write_corpus(tmp_path / "corpus", n_bonafide=N_BONAFIDE, n_spoof=N_SPOOF) / "protocol.csv"
    out, scores = tmp_path / "out", tmp_path / "scores.tsv"
    n_clips = N_BONAFIDE + N_SPOOF
    with LocalRayCluster() as cluster:
        cluster.add_node("head", 1, head=True)
        cluster.add_node("second", 1, resources={"second_node": 1})
        if not cluster.wait_nodes("head", "second"):
            pytest.skip(f"two Ray nodes did not start on this machine:\n{cluster.logs()}")

        # reconstruct: one actor per node (--workers 2), a manifest part per clip (--batch-size 1)
        recon = [str(BIN / "reconstruct"), "run", "--ray-address", cluster.address, *GRIFFINLIM,
                 "--corpus", str(corpus), "--out", str(out), "--workers", "2", "--batch-size", "1"]
        audio = out / "audio"
        code, log, killed = run_and_crash(cluster, recon, lambda: sum(1 for _ in audio.rglob("*.flac"))
                                          if audio.is_dir() else 0, kill_at=n_clips // 4, cwd=tmp_path)
        assert killed, f"the run ended before the node was killed; make it longer:\n{log[-3000:]}"
        reran = code != 0
        if reran:                                 # resume on the surviving head
            again = subprocess.run([*recon, "--workers", "1", "--retry-failed"], env=cluster.env, cwd=tmp_path,
                                   capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
            assert again.returncode == 0, f"first run:\n{log[-3000:]}\nre-run:\n{again.stdout[-3000:]}{again.stderr[-3000:]}"
        rows = manifests.read(out / "manifest").to_pylist()
        recons = [r for r in rows if r["kind"] == "reconstruction"]
        per_source = Counter(r["source_id"] for r in recons)
        originals = {r["utt_id"] for r in rows if r["kind"] == "original"}
        assert len(originals) == n_clips and set(per_source) == originals, (sorted(originals), per_source)
        assert set(per_source.values()) == {1}, f"a clip twice: {per_source.most_common(3)}"
        assert len({r["utt_id"] for r in rows}) == len(rows), "duplicate utt_id rows"
        assert all(r["status"] == "ok" and Path(r["path"]).is_file() for r in recons), recons
        assert temp_files(out) == [], temp_files(out)

        # detector score over the manifest (originals + reconstructions), shards of 4 clips
        cluster.add_node("second", 1, resources={"second_node": 1})
        if not cluster.wait_nodes("head", "second"):
            pytest.skip(f"the second Ray node did not start again:\n{cluster.logs()}")
        score = [sys.executable, "-c", SCORE, "4", "score", "--checkpoint", str(checkpoint), "--input",
                 str(out / "manifest"), "--out", str(scores), "--executor", "ray", "--ray-address",
                 cluster.address, "--workers", "2", "--no-progress"]
        parts = Path(f"{scores}.parts")
        code, log, killed = run_and_crash(cluster, score, lambda: sum(1 for _ in parts.glob("*.tsv"))
                                          if parts.is_dir() else 0, kill_at=3, cwd=tmp_path)
        assert killed, f"scoring ended before the node was killed; make it longer:\n{log[-3000:]}"
        if code != 0:
            again = subprocess.run([*score[:-3], "--workers", "1", "--no-progress"], env=cluster.env, cwd=tmp_path,
                                   capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
            assert again.returncode == 0, f"first run:\n{log[-3000:]}\nre-run:\n{again.stdout[-3000:]}{again.stderr[-3000:]}"
        scored = read_scores(scores)
        ids = Counter(r["id"] for r in scored)
        assert set(ids) == {r["utt_id"] for r in rows} and set(ids.values()) == {1}, ids
        assert all(r["score"] != "" for r in scored), [r for r in scored if r["score"] == ""]
        assert not parts.exists(), "the shard folder outlived a complete run"
        assert temp_files(tmp_path) == [], temp_files(tmp_path)
        print(f"reconstruct: {'re-run completed it' if reran else 'finished on the head'}; "
              f"score: {'re-run completed it' if code != 0 else 'finished on the head'}")

"""`detector score --executor ray`: the same scores as in-process, in shards an actor pool writes, resumable."""
from pathlib import Path

from click.testing import CliRunner

from detector.scoring import ray_executor
from manifests import scores_tsv
from detector.cli import main
from detector.scoring.evaluate import _inputs

TINY = ["--frontend", "tiny", "--backend", "linear", "--tiny-hidden", "16", "--crop", "8000", "--batch-size", "2",
        "--epochs", "1", "--max-steps", "2", "--no-augment", "--no-progress"]


def _run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_ray_scores_equal_local_scores_and_a_rerun_redoes_only_missing_shards(ray_session, manifest, tmp_path,
                                                                             monkeypatch):
    assert _run("train", "--manifest", manifest, "--out", tmp_path / "run", *TINY).exit_code == 0
    monkeypatch.setattr(ray_executor, "SHARD", 3)
    local, ray_out = tmp_path / "local.tsv", tmp_path / "ray.tsv"
    assert _run("score", "--checkpoint", tmp_path / "run", "--input", manifest, "--out", local, "--no-progress").exit_code == 0
    r = _run("score", "--checkpoint", tmp_path / "run", "--input", manifest, "--out", ray_out, "--no-progress",
             "--executor", "ray", "--workers", "2")
    assert r.exit_code == 0, r.output
    assert scores_tsv.read(ray_out) == scores_tsv.read(local)  # same ids, order, scores and decisions
    assert scores_tsv.checkpoint_sha256(ray_out) == scores_tsv.checkpoint_sha256(local)
    assert not Path(f"{ray_out}.parts").exists()

    # an interrupted run: shards on disk, one missing; the re-run scores only that one
    items, _ = _inputs(str(manifest))
    args = (str(tmp_path / "run"), items, {}, tmp_path / "again.tsv", 2, None, 2, 0.0, None, False)
    columns, rows, _ = ray_executor.score_sharded(*args)
    parts = sorted(Path(f"{tmp_path / 'again.tsv'}.parts").iterdir())
    assert len(parts) == -(-len(items) // 3)
    parts[1].unlink()
    before = {p: p.stat().st_mtime_ns for p in parts if p.exists()}
    columns2, rows2, _ = ray_executor.score_sharded(*args)
    assert rows2 == rows and columns2 == columns
    assert {p: p.stat().st_mtime_ns for p in before} == before and parts[1].exists()

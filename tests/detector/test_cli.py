"""The CLI end to end on a tiny generated manifest: train 2 steps, reload, eval, score, inspect, errors."""
import json
import os
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import manifests
from detector import checkpoint
from detector.cli import main
from detector.training.data import assign_splits, load_clips
from detector.scoring.windows import score_paths

TINY = ["--frontend", "tiny", "--backend", "linear", "--tiny-hidden", "16", "--crop", "8000", "--batch-size", "2",
        "--epochs", "1", "--max-steps", "2", "--no-augment", "--no-progress"]


def _run(args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def run_dir(manifest: Path, tmp_path: Path) -> Path:
    r = _run(["train", "--manifest", manifest, "--out", tmp_path / "run", *TINY])
    assert r.exit_code == 0, r.output
    assert "dev EER" in r.output
    return tmp_path / "run"


def test_train_two_steps_and_reload_identical_scores(run_dir: Path, manifest: Path):
    log = (run_dir / "log.csv").read_text().splitlines()
    assert len(log) == 2 and int(log[1].split(",")[2]) == 2  # header + one epoch of 2 steps
    meta = json.loads((run_dir / "final" / "meta.json").read_text())
    assert set(meta["manifests"].values()) == {checkpoint_hash(manifest)}
    dev = [c for c in assign_splits(load_clips([manifest])) if c.split == "dev"]
    a, _, _ = score_paths(checkpoint.load(run_dir)[0], [c.path for c in dev], 8000)
    b, _, _ = score_paths(checkpoint.load(run_dir / "final")[0], [c.path for c in dev], 8000)
    assert np.array_equal(a, b) and np.isfinite(a).all()
    from detector.scoring.metrics import eer
    labels = np.array([c.label for c in dev])
    rate, thr = eer(a[labels == 1], a[labels == 0])
    assert rate == pytest.approx(meta["dev_eer"]) and thr == pytest.approx(meta["threshold"])


def checkpoint_hash(path):
    from detector.training.data import manifest_hash
    return manifest_hash(path)


def test_eval_score_inspect(run_dir: Path, manifest: Path, tmp_path: Path):
    r = _run(["eval", "--checkpoint", run_dir, "--manifest", manifest, "--out", tmp_path / "ev", "--no-progress"])
    assert r.exit_code == 0, r.output
    assert "EER" in r.output and "attack" in r.output and "method" in r.output and "model" in r.output
    tsv = (tmp_path / "ev" / "scores.tsv").read_text().splitlines()
    assert "higher score = more likely bona fide" in tsv[0] and tsv[1].startswith("utt_id\tscore")
    assert (tmp_path / "ev" / "det.png").stat().st_size > 0 and (tmp_path / "ev" / "hist.png").is_file()
    corpus = manifest.parent / "corpus"
    for inp in (corpus / "bonafide", corpus / "bonafide" / "spk0" / "utt0.flac", manifest):
        out = tmp_path / "s.tsv"
        r = _run(["score", "--checkpoint", run_dir, "--input", inp, "--out", out, "--no-progress"])
        assert r.exit_code == 0, r.output
        lines = out.read_text().splitlines()
        assert "higher score = more likely bona fide" in lines[0] and len(lines) > 2
    r = _run(["eval", "--checkpoint", run_dir, "--manifest", manifest, "--split", "dev", "--out", tmp_path / "ev2",
              "--no-progress"])
    assert r.exit_code == 0 and "clips 5 " in r.output, r.output  # 2 bona fide, 1 spoof, 2 reconstructions
    r = _run(["inspect", "--checkpoint", run_dir])
    assert r.exit_code == 0 and "layer weights" in r.output


def test_score_and_eval_read_a_bucket(run_dir: Path, manifest: Path, tmp_path: Path, s3_bucket: str):
    from tests.conftest import upload

    corpus = manifest.parent / "corpus"
    upload(corpus, f"{s3_bucket}/corpus")
    local, remote = tmp_path / "local.tsv", tmp_path / "remote.tsv"
    for inp, out in ((corpus / "bonafide", local), (f"{s3_bucket}/corpus/bonafide", remote)):
        r = _run(["score", "--checkpoint", run_dir, "--input", inp, "--out", out, "--no-progress"])
        assert r.exit_code == 0 and "scored 4 file(s), 0 not scored" in r.output, r.output

    def id_score(tsv):  # id, score, decision (paths differ)
        return [(f[0], f[2], f[3]) for f in (line.split("\t") for line in tsv.read_text().splitlines()[2:])]
    assert id_score(remote) == id_score(local) and id_score(local)[0][0] == "spk0/utt0.flac"
    rows = manifests.read(manifest).to_pylist()
    for r in rows:
        r["path"] = f"{s3_bucket}/corpus/" + os.path.relpath(r["path"], corpus) if r["kind"] == "original" else r["path"]
    manifests.write(rows, f"{s3_bucket}/m.parquet")
    r = _run(["eval", "--checkpoint", run_dir, "--manifest", f"{s3_bucket}/m.parquet", "--out", tmp_path / "ev",
              "--no-progress"])
    assert r.exit_code == 0 and "EER" in r.output, r.output


def test_score_long_clip_uses_windows(run_dir: Path, tmp_path: Path):
    import soundfile as sf
    from tests.conftest import speechlike
    sf.write(tmp_path / "long.flac", speechlike(2.3), 16000)  # 36800 samples -> 5 windows of 8000
    model, cfg, _ = checkpoint.load(run_dir)
    s, err, _ = score_paths(model, [str(tmp_path / "long.flac")], cfg.data.crop)
    assert not err and np.isfinite(s).all()


def test_missing_column_exit_2(manifest: Path, tmp_path: Path):
    t = pq.read_table(manifest).drop(["label"])
    pq.write_table(t, tmp_path / "bad.parquet")
    r = _run(["train", "--manifest", tmp_path / "bad.parquet", "--out", tmp_path / "r", *TINY])
    assert r.exit_code == 2 and "label" in r.output and len(r.output.strip().splitlines()) == 1


def test_one_class_exit_2(manifest: Path, tmp_path: Path):
    t = manifests.read(manifest)
    rows = [r for r in t.to_pylist() if r["label"] == "bonafide"]
    one = manifests.write(rows, tmp_path / "one.parquet")
    r = _run(["train", "--manifest", one, "--out", tmp_path / "r", *TINY])
    assert r.exit_code == 2 and "only bonafide" in r.output and len(r.output.strip().splitlines()) == 1


def test_dev_split_without_bonafide_exit_2(manifest: Path, tmp_path: Path):
    rows = [r for r in manifests.read(manifest).to_pylist() if not (r["split"] == "dev" and r["label"] == "bonafide")]
    m = manifests.write(rows, tmp_path / "nodev.parquet")
    r = _run(["train", "--manifest", m, "--out", tmp_path / "r", *TINY])
    assert r.exit_code == 2 and "dev split" in r.output


def test_unfinished_run_is_named_as_such(run_dir: Path, manifest: Path):
    import shutil

    shutil.rmtree(run_dir / "final")  # as if killed before the end
    r = CliRunner().invoke(main, ["eval", "--checkpoint", str(run_dir), "--manifest", str(manifest)])
    assert r.exit_code == 2 and "has not finished (no final/ checkpoint yet)" in r.output


def test_inspect_prints_parameter_counts(run_dir: Path):
    r = _run(["inspect", "--checkpoint", run_dir])
    assert r.exit_code == 0 and "parameters: frontend" in r.output and "trainable" in r.output
    info = json.loads(_run(["inspect", "--checkpoint", run_dir, "--json"]).output)
    p = info["parameters"]
    assert p["total"] == p["frontend"] + p["aggregator"] + p["backend"] + p["head"] > 0

"""`manifests mine`: the hardest reconstructions per source or per model, the random control, strict joins."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import manifests
from manifests import scores_tsv
from manifests.cli import main

SHA = "ab" * 32
VARIANTS = ("opus@bitrate_kbps=6", "opus@bitrate_kbps=12", "opus@bitrate_kbps=24")


def candidates(tmp_path: Path, n_sources: int = 5) -> tuple[Path, dict[str, float]]:
    """A manifest of originals, one corpus spoof and 3 grid-point reconstructions per original (no audio
    is read by mining), and a score per reconstruction drawn at random."""
    rng = np.random.default_rng(0)
    rows, scores = [], {}
    for i in range(n_sources):
        src = f"utt{i}"
        rows.append(dict(manifests.empty_row(), utt_id=src, path=str(tmp_path / f"{src}.flac"), label="bonafide",
                         kind="original", source_id=src, attack="-", status="ok", split="train"))
        for v in VARIANTS:
            uid = f"{src}__{v}"
            rows.append(dict(manifests.empty_row(), utt_id=uid, path=str(tmp_path / f"{uid}.flac"), label="spoof",
                             kind="reconstruction", source_id=src, method="codec", model="opus", attack=v,
                             status="ok"))
            scores[uid] = float(rng.normal())
    rows.append(dict(manifests.empty_row(), utt_id="tts0", path=str(tmp_path / "tts0.flac"), label="spoof",
                     kind="original", source_id="tts0", attack="A01", status="ok", split="train"))
    path = tmp_path / "cands.parquet"
    manifests.write(rows, path)
    return path, scores


def write_scores(path: Path, scores: dict[str, float | None], extra: list[str] = ()) -> Path:
    rows = [(u, f"{u}.flac", s, "", "") for u, s in scores.items()] + [(u, "x.flac", 0.0, "", "") for u in extra]
    scores_tsv.write(path, 0.0, ["id", "path", "score", "decision", "error"], rows, f"; {scores_tsv.SHA_KEY} {SHA}")
    return path


def mine(*args):
    return CliRunner().invoke(main, ["mine", *map(str, args)])


def test_per_source_keeps_each_originals_hardest(tmp_path):
    cands, scores = candidates(tmp_path)
    s = write_scores(tmp_path / "s.tsv", scores)
    r = mine("--manifest", cands, "--scores", s, "--keep", "0.3", "--per", "source", "--out", tmp_path / "hard.parquet")
    assert r.exit_code == 0, r.output
    out = manifests.read(tmp_path / "hard.parquet").to_pylist()
    kept = [x for x in out if x["kind"] == "reconstruction"]
    for i in range(5):
        mine_ = [x for x in kept if x["source_id"] == f"utt{i}"]
        best = max((u for u in scores if u.startswith(f"utt{i}__")), key=scores.get)
        assert [x["utt_id"] for x in mine_] == [best]  # ceil(0.3 * 3) = 1 of each source's 3
    assert all(abs(x["hardness"] - scores[x["utt_id"]]) < 1e-6 and x["scored_by_sha256"] == SHA for x in kept)
    # every other row is kept as it was
    assert sorted(x["utt_id"] for x in out if x["kind"] == "original") == ["tts0", *[f"utt{i}" for i in range(5)]]


def test_per_model_keeps_the_hardest_share_of_each_variant(tmp_path):
    cands, scores = candidates(tmp_path, n_sources=6)
    s = write_scores(tmp_path / "s.tsv", scores)
    r = mine("--manifest", cands, "--scores", s, "--keep", "0.5", "--per", "model", "--out", tmp_path / "h.parquet")
    assert r.exit_code == 0, r.output
    kept = {x["utt_id"] for x in manifests.read(tmp_path / "h.parquet").to_pylist() if x["kind"] == "reconstruction"}
    for v in VARIANTS:
        mine_ = sorted((u for u in scores if u.endswith("__" + v)), key=scores.get, reverse=True)
        assert {u for u in kept if u.endswith("__" + v)} == set(mine_[:3])


def test_random_is_the_same_count_per_group_seeded(tmp_path):
    cands, scores = candidates(tmp_path, n_sources=8)
    s = write_scores(tmp_path / "s.tsv", scores)
    picks = []
    for seed in (1, 1, 2):
        out = tmp_path / f"r{len(picks)}.parquet"
        r = mine("--manifest", cands, "--scores", s, "--keep", "0.3", "--out", out, "--random", "--seed", seed)
        assert r.exit_code == 0, r.output
        kept = [x for x in manifests.read(out).to_pylist() if x["kind"] == "reconstruction"]
        assert sorted(x["source_id"] for x in kept) == [f"utt{i}" for i in range(8)]  # one per source
        picks.append({x["utt_id"] for x in kept})
    hardest = {max((u for u in scores if u.startswith(f"utt{i}__")), key=scores.get) for i in range(8)}
    assert picks[0] == picks[1] and picks[0] != picks[2] and picks[0] != hardest


@pytest.mark.parametrize("change,needle", [
    ("missing", "1 reconstruction(s) of"),
    ("stray", "1 id(s) of"),
    ("duplicate", "occur more than once"),
])
def test_scores_that_do_not_join_are_one_line_exit_2(tmp_path, change, needle):
    cands, scores = candidates(tmp_path)
    extra = []
    if change == "missing":
        scores.pop(next(iter(scores)))
    elif change == "stray":
        extra = ["not-in-the-manifest"]
    else:
        extra = [next(iter(scores))]
    s = write_scores(tmp_path / "s.tsv", scores, extra)
    r = mine("--manifest", cands, "--scores", s, "--keep", "0.5", "--out", tmp_path / "h.parquet")
    assert r.exit_code == 2 and needle in r.output and len(r.output.strip().splitlines()) == 1, r.output
    assert not (tmp_path / "h.parquet").exists()


def test_detector_score_names_its_weights_and_mining_stores_them(tmp_path):
    """End to end: a tiny detector scores a manifest, `manifests mine` keeps the hardest reconstruction of
    each source and records the detector's weights sha256."""
    from detector import checkpoint
    from detector.cli import main as detector_main
    from tests.detector.conftest import make_manifest

    manifest = make_manifest(tmp_path)
    tiny = ["--frontend", "tiny", "--backend", "linear", "--tiny-hidden", "16", "--crop", "8000", "--batch-size", "2",
            "--epochs", "1", "--max-steps", "2", "--no-augment", "--no-progress"]
    run = CliRunner().invoke(detector_main, ["train", "--manifest", str(manifest), "--out", str(tmp_path / "run"), *tiny])
    assert run.exit_code == 0, run.output
    s = tmp_path / "s.tsv"
    r = CliRunner().invoke(detector_main, ["score", "--checkpoint", str(tmp_path / "run"), "--input", str(manifest),
                                           "--out", str(s), "--no-progress"])
    assert r.exit_code == 0, r.output
    sha = checkpoint.weights_sha256(tmp_path / "run")
    assert scores_tsv.checkpoint_sha256(s) == sha
    r = mine("--manifest", manifest, "--scores", s, "--keep", "1", "--out", tmp_path / "h.parquet")
    assert r.exit_code == 0, r.output
    kept = [x for x in manifests.read(tmp_path / "h.parquet").to_pylist() if x["kind"] == "reconstruction"]
    by_id = {row["id"]: float(row["score"]) for row in scores_tsv.read(s)}
    assert kept and all(x["scored_by_sha256"] == sha and abs(x["hardness"] - by_id[x["utt_id"]]) < 1e-5 for x in kept)


@pytest.mark.parametrize("content", [bytes(range(256)) * 8, b"id\tscore\nx\t1\x00\n"])
def test_scores_that_are_not_text_are_one_line_exit_2(tmp_path, content):
    """A binary file given as --scores: one line naming it, not a UnicodeDecodeError traceback (issue 29.10)."""
    cands, _ = candidates(tmp_path)
    (tmp_path / "s.tsv").write_bytes(content)
    r = mine("--manifest", cands, "--scores", tmp_path / "s.tsv", "--keep", "0.5", "--out", tmp_path / "h.parquet")
    assert r.exit_code == 2 and "s.tsv is not a scores file" in r.output, r.output
    assert len(r.output.strip().splitlines()) == 1 and "Traceback" not in r.output

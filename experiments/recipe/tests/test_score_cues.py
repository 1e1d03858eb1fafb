"""score_cues.correlations: rank correlation of a detector score with a cue, per group of clips."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import score_cues  # noqa: E402
from cue_features import FEATURES  # noqa: E402


def test_score_that_follows_one_cue_correlates_with_it_only():
    rng = np.random.default_rng(0)
    feats, scores = {}, {}
    for i in range(40):
        attack = "-" if i < 20 else ("X" if i < 30 else "other")
        row = {f: float(rng.standard_normal()) for f in FEATURES}
        feats[f"u{i}"] = {"attack": attack, **row}
        scores[f"u{i}"] = 2.0 * row["quiet_pct"] + (5.0 if attack == "-" else 0.0)
    c = score_cues.correlations(scores, feats, "X")
    assert c["quiet_pct"][1] > 0.99 and c["quiet_pct"][2] > 0.99   # within bona fide, within held-out X
    assert abs(c["hf6_db"][1]) < 0.6
    assert c["duration_s"][0] < c["quiet_pct"][0]


def test_read_scores_skips_the_comment_line(tmp_path: Path):
    p = tmp_path / "scores.tsv"
    p.write_text("# comment\nutt_id\tscore\tlabel\na/b\t1.5\tbonafide\nc\t-2\tspoof\n")
    assert score_cues.read_scores(p) == {"a/b": 1.5, "c": -2.0}

"""compare.table: mean ± std per fold from results.parquet, fold average only over seeds with every fold."""
from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import compare  # noqa: E402


def write(folder: Path, rows: list[tuple[str, int, str, float]]) -> None:
    folder.mkdir(parents=True)
    pd.DataFrame(rows, columns=["fold", "seed", "eval_set", "held_out_eer"]).to_parquet(folder / "results.parquet")


def test_cells_and_average(tmp_path: Path):
    write(tmp_path / "baseline", [("mlsa-cs", 688, "dev", 50.0), ("mlsa-cs", 689, "dev", 70.0),
                                  ("espeak-cs", 688, "dev", 0.0), ("festival-cs", 688, "dev", 4.0),
                                  ("mlsa-cs", 688, "other", 99.0)])
    lines, n = compare.table(tmp_path)
    base = lines[2]
    assert "60.00 ± 14.14 (2 seeds)" in base            # the other eval set's 99 is not mixed in
    assert "0.00 (1 seed)" in base and "4.00 (1 seed)" in base
    assert base.endswith("| 18.00 (1 seed) |")          # seed 689 lacks two folds: not in the average
    assert n == 4
    assert lines[3].count("–") == 4                     # no trimmed results yet: empty row, no crash

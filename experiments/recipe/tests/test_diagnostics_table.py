"""diagnostics_table: per-variant means at the checkpoint's selected epoch, unfinished runs left out."""
from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import diagnostics_table  # noqa: E402


def write_run(folder: Path, best: int | None, dist_by_epoch: dict[int, float]) -> None:
    folder.mkdir(parents=True)
    with (folder / "diagnostics.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["epoch", "metric", "group", "value"])
        for epoch, value in dist_by_epoch.items():
            w.writerow([epoch, "dist", "spoof~spoof", value])
            w.writerow([epoch, "loss", "std", 10 * value])
    if best is not None:
        (folder / "final").mkdir()
        (folder / "final" / "meta.json").write_text(json.dumps({"best_epoch": best}))


def test_mean_at_the_selected_epoch_over_finished_runs(tmp_path: Path):
    write_run(tmp_path / "runs/RACL/mlsa-cs/seed688", 1, {0: 0.9, 1: 0.2, 2: 0.7})
    write_run(tmp_path / "runs/RACL/espeak-cs/seed688", 2, {0: 1.1, 1: 0.5, 2: 0.4})
    write_run(tmp_path / "runs/RACL/festival-cs/seed688", None, {0: 5.0})  # unfinished: not counted
    best = diagnostics_table.table(tmp_path, "best")
    first = diagnostics_table.table(tmp_path, "first")
    col = [h for h, _, _ in diagnostics_table.COLUMNS].index("spoof spread") + 1
    assert best[2].startswith("| RACL (2) |")
    assert best[2].split("|")[col + 1].strip() == "0.3"      # mean of 0.2 (epoch 1) and 0.4 (epoch 2)
    assert first[2].split("|")[col + 1].strip() == "1"       # mean of 0.9 and 1.1
    assert best[2].split("|")[3].strip() == "3"              # L_std at the selected epochs: 2 and 4
    assert best[2].split("|")[2].strip() == "–"              # L_cls was not logged

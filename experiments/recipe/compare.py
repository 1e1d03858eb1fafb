"""One table of held-out EER per fold for the recipe study's rows (issue 28, section 2).

Reads OUT/results.parquet of each `detector experiment` named below (written by the runner, also with
--finished-only) and writes a markdown table: held-out EER (%) per fold, mean +- std over seeds, and the
average over folds (mean of the per-seed fold averages, only over seeds that finished every fold).

    .venv/bin/python experiments/recipe/compare.py [--out experiments/results/recipe/comparison.md]
"""
from __future__ import annotations

import sys
from pathlib import Path

import click
import numpy as np
import pandas as pd

RESULTS = Path(__file__).resolve().parents[1] / "results" / "recipe"
ROWS = [  # (label, experiment folder under RESULTS, eval set)
    ("untrimmed corpus (baseline.yaml)", "baseline", "dev"),
    ("silence-trimmed corpus (trimmed.yaml)", "trimmed", "dev"),
    ("silence-trimmed training, untrimmed dev (trimmed.yaml)", "trimmed", "dev-untrimmed"),
    ("low-passed at 7 kHz (lowpass.yaml)", "lowpass7k", "dev"),
    ("low-passed training, unfiltered dev (lowpass.yaml)", "lowpass7k", "dev-unfiltered"),
]
FOLDS = ["mlsa-cs", "espeak-cs", "festival-cs"]
SEEDS = [688, 689, 690]


def _cell(values: list[float]) -> str:
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.2f} (1 seed)"
    return f"{np.mean(values):.2f} ± {np.std(values, ddof=1):.2f}" + ("" if len(values) == len(SEEDS) else f" ({len(values)} seeds)")


def table(results: Path = RESULTS) -> tuple[list[str], int]:
    """Markdown lines and the number of runs found (of len(ROWS's experiments) x folds x seeds)."""
    lines = ["| row | " + " | ".join(f"unseen {f}" for f in FOLDS) + " | avg |", "|---|" + "---|" * (len(FOLDS) + 1)]
    runs = set()
    for label, folder, eval_set in ROWS:
        path = results / folder / "results.parquet"
        d = pd.read_parquet(path) if path.is_file() else pd.DataFrame(columns=["fold", "seed", "eval_set", "held_out_eer"])
        d = d[d["eval_set"] == eval_set]
        runs |= {(folder, f, s) for f, s in zip(d["fold"], d["seed"])}
        cells = [_cell(d[d["fold"] == f]["held_out_eer"].tolist()) for f in FOLDS]
        full = [s for s in SEEDS if set(d[d["seed"] == s]["fold"]) >= set(FOLDS)]
        avg = [float(d[(d["seed"] == s) & d["fold"].isin(FOLDS)]["held_out_eer"].mean()) for s in full]
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {_cell(avg)} |")
    return lines, len(runs)


@click.command()
@click.option("--out", default=str(RESULTS / "comparison.md"), show_default=True, type=click.Path(dir_okay=False))
def main(out: str) -> None:
    lines, n = table()
    total = len({folder for _, folder, _ in ROWS}) * len(FOLDS) * len(SEEDS)
    status = "all runs finished" if n == total else f"interim: {n} of {total} runs"
    text = ["# Held-out EER (%), CE baseline (lfcc), mean ± std over seeds 688-690", "",
            f"Written by `.venv/bin/python experiments/recipe/compare.py` from the runners' results.parquet "
            f"({status}).", ""] + lines
    Path(out).write_text("\n".join(text) + "\n", encoding="utf-8")
    click.echo("\n".join(text))


if __name__ == "__main__":
    sys.exit(main())

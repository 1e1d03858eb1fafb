"""What RACL does to the embedding space: a table of the training diagnostics of a recipe study (issue 28, section 1).

Reads OUT/runs/<variant>/<fold>/seed<S>/diagnostics.csv of one `detector experiment` whose runs trained with
`--diagnostics` (experiments/recipe/lfcc.yaml) and writes, per variant, the mean over its finished runs of the
selected epoch's values (the checkpoint's `best_epoch`) and of the first epoch's:

- the loss terms (cls, std, enh, reg, oc);
- distances between unit dev embeddings: bona fide <-> own reconstruction, bona fide <-> TTS spoof, spoof <->
  reconstruction, the spread within spoofs and within reconstructions (does L_std collapse them into one point?),
  held-out dev clips <-> bona fide / spoof;
- the share of different-label dev pairs inside the margin;
- the mean logit of dev bona fide, seen spoofs, reconstructions and held-out spoofs (logit units differ between
  a linear head and the OC cosine: compare within a row).

    .venv/bin/python experiments/recipe/diagnostics_table.py [--experiment experiments/results/recipe/lfcc]
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from detector.training.diagnostics import read  # noqa: E402
COLUMNS = [  # (header, metric, group)
    ("L_cls", "loss", "cls"), ("L_std", "loss", "std"), ("L_enh", "loss", "enh"), ("L_reg", "loss", "reg"),
    ("bona~own recon", "dist", "bonafide~own_recon"), ("bona~spoof", "dist", "bonafide~spoof"),
    ("spoof~recon", "dist", "spoof~recon"), ("spoof spread", "dist", "spoof~spoof"),
    ("recon spread", "dist", "recon~recon"), ("held-out~bona", "dist", "heldout~bonafide"),
    ("held-out~spoof", "dist", "heldout~spoof"), ("inside margin", "inside_margin", "dev"),
    ("logit bona", "logit_mean", "kind=bonafide"), ("logit spoof", "logit_mean", "kind=spoof"),
    ("logit recon", "logit_mean", "kind=reconstruction"), ("logit held-out", "logit_mean", "heldout kind=spoof"),
]


def _at(series: tuple[np.ndarray, np.ndarray] | None, epoch: int) -> float:
    """The value of one (epochs, values) series of `detector.training.diagnostics.read` at `epoch`, NaN if none."""
    if series is None:
        return float("nan")
    hit = series[1][series[0] == epoch]
    return float(hit[-1]) if len(hit) else float("nan")


def runs(experiment: Path) -> dict[str, list[tuple[dict, int, str]]]:
    """variant folder -> [(diagnostics, selected epoch, fold)] for the finished runs."""
    found: dict[str, list] = {}
    for csv_path in sorted(experiment.glob("runs/*/*/seed*/diagnostics.csv")):
        meta = csv_path.parent / "final" / "meta.json"
        if meta.is_file():
            best = json.loads(meta.read_text())["best_epoch"]
            found.setdefault(csv_path.parents[2].name, []).append((read(csv_path), best, csv_path.parents[1].name))
    return found


def _mean(values: list[float]) -> str:
    values = [v for v in values if v == v]
    return f"{np.mean(values):.3g}" if values else "–"


def table(experiment: Path, epoch: str) -> list[str]:
    """Markdown lines: one row per variant, the mean over its runs at the selected (`best`) or `first` epoch."""
    lines = ["| variant (runs) | " + " | ".join(h for h, _, _ in COLUMNS) + " |", "|---|" + "---|" * len(COLUMNS)]
    for variant, found in runs(experiment).items():
        cells = []
        for _, metric, group in COLUMNS:
            cells.append(_mean([_at(d.get((metric, group)), best if epoch == "best" else 0)
                                for d, best, _ in found]))
        lines.append(f"| {variant.replace('_', ' ')} ({len(found)}) | " + " | ".join(cells) + " |")
    return lines


@click.command()
@click.option("--experiment", default=str(ROOT / "experiments/results/recipe/lfcc"), show_default=True,
              type=click.Path(file_okay=False))
@click.option("--out", default=None, type=click.Path(dir_okay=False), help="[EXPERIMENT/diagnostics.md]")
def main(experiment: str, out: str | None) -> None:
    exp = Path(experiment)
    if not any(exp.glob("runs/*/*/seed*/diagnostics.csv")):
        raise click.UsageError(f"no runs with diagnostics.csv under {exp / 'runs'}")
    text = [f"# Training diagnostics of {exp.name} (`experiments/recipe/diagnostics_table.py`)", "",
            "Mean over each variant's finished runs (all folds and seeds). Distances are between unit-length dev",
            "embeddings (0 = same point, 2 = opposite). Logits: dev-split means; held-out = the fold's held-out",
            "attack's dev clips (looked at, never used for a choice).", "",
            "## At the selected epoch (the checkpoint's best_epoch)", "", *table(exp, "best"), "",
            "## After the first epoch", "", *table(exp, "first"), ""]
    target = Path(out) if out else exp / "diagnostics.md"
    tmp = target.with_suffix(".tmp")
    tmp.write_text("\n".join(text))
    tmp.replace(target)
    click.echo(f"wrote {target}")


if __name__ == "__main__":
    main()

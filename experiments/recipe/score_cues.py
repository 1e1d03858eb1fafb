"""Does a trained detector's score follow a trivial cue? (issue 28, section 2)

For every finished run of a `detector experiment` folder, joins the dev scores (OUT/runs/.../eval/<set>/scores.tsv,
higher = more bona fide) with the cue features of cue_features.py and writes the Spearman rank correlation
of score and feature: over the dev bona fide + the run's held-out attack, and within the bona fide clips only
(where the generator is the same for every clip, so a correlation there is a cue the detector reads). Mean
over seeds, per fold.

    .venv/bin/python experiments/recipe/score_cues.py [--experiment experiments/results/recipe/baseline] \
        [--corpus ../shared/data/dev-corpus] [--eval-set dev] [--out experiments/results/recipe/score-cues.md]
"""
from __future__ import annotations

import csv
import shlex
import sys
from pathlib import Path

import click
import numpy as np
import soundfile as sf
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cue_features import FEATURES, clip_features  # noqa: E402
from cues import DEFAULT_CORPUS, REPO  # noqa: E402

FOLDS = ["mlsa-cs", "espeak-cs", "festival-cs"]


def dev_features(corpus: Path) -> dict[str, dict]:
    """utt_id (path without extension) -> protocol row + features, for the dev split."""
    with open(corpus / "protocol.csv", newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["split"] == "dev"]
    out = {}
    for r in rows:
        wav, sr = sf.read(corpus / r["path"], dtype="float64", always_2d=True)
        out[str(Path(r["path"]).with_suffix(""))] = {**r, **clip_features(wav.mean(axis=1), sr)}
    return out


def read_scores(path: Path) -> dict[str, float]:
    """scores.tsv (first line a comment, then a header with utt_id and score) -> {utt_id: score}."""
    with open(path, encoding="utf-8") as fh:
        next(fh)
        return {r["utt_id"]: float(r["score"]) for r in csv.DictReader(fh, delimiter="\t")}


def correlations(scores: dict[str, float], feats: dict[str, dict], held_out: str) -> dict[str, tuple[float, ...]]:
    """feature -> (rho over bona fide + held_out, within bona fide, within held_out); nan where a feature is
    constant."""
    out = {}
    both = [u for u in scores if u in feats and feats[u]["attack"] in ("-", held_out)]
    bona = [u for u in both if feats[u]["attack"] == "-"]
    spoof = [u for u in both if feats[u]["attack"] == held_out]
    for f in FEATURES:
        rho = []
        for sel in (both, bona, spoof):
            x, y = [feats[u][f] for u in sel], [scores[u] for u in sel]
            rho.append(float(spearmanr(x, y)[0]) if len(set(x)) > 1 else float("nan"))
        out[f] = tuple(rho)
    return out


@click.command()
@click.option("--experiment", default=str(REPO / "experiments" / "results" / "recipe" / "baseline"),
              show_default=True, type=click.Path(file_okay=False), help="A `detector experiment` OUT folder.")
@click.option("--corpus", default=DEFAULT_CORPUS, show_default=True, type=click.Path(file_okay=False),
              help="The corpus its eval set was made from. Env: DEV_CORPUS.")
@click.option("--eval-set", default="dev", show_default=True)
@click.option("--out", default=str(REPO / "experiments" / "results" / "recipe" / "score-cues.md"),
              show_default=True, type=click.Path(dir_okay=False))
def main(experiment: str, corpus: str, eval_set: str, out: str) -> None:
    runs = sorted(Path(experiment).glob(f"runs/*/*/seed*/eval/{eval_set}/scores.tsv"))
    if not runs:
        raise click.UsageError(f"no runs/*/<fold>/seed*/eval/{eval_set}/scores.tsv under {experiment}")
    if not (Path(corpus) / "protocol.csv").is_file():
        raise click.UsageError(f"--corpus {corpus}: no protocol.csv there")
    feats = dev_features(Path(corpus))
    per_fold: dict[str, list[dict]] = {}
    medians: dict[str, list[tuple[float, float]]] = {}
    for path in runs:
        fold = path.parents[3].name
        scores = read_scores(path)
        per_fold.setdefault(fold, []).append(correlations(scores, feats, fold))
        med = [float(np.median([s for u, s in scores.items() if feats.get(u, {}).get("attack") == a]))
               for a in ("-", fold)]
        medians.setdefault(fold, []).append((med[0], med[1]))
    folds = [f for f in FOLDS if f in per_fold]
    argv = " ".join(shlex.quote(a) for a in sys.argv[1:])
    lines = [f"# Detector score vs trivial cues ({Path(experiment).name}, eval set {eval_set})", "",
             f"Written by `.venv/bin/python experiments/recipe/score_cues.py {argv}`. Spearman rho of the score "
             "(higher = more bona fide) and each feature, mean over the seeds found "
             f"({', '.join(f'{f}: {len(per_fold[f])}' for f in folds)}). `bona+held-out`: over the dev bona "
             "fide and the fold's held-out attack; `bona`: within the dev bona fide clips; `held-out`: within "
             "the held-out attack's clips.", "",
             "| feature | " + " | ".join(f"{f}: bona+held-out | bona | held-out" for f in folds) + " |",
             "|---|" + "---|---|---|" * len(folds)]
    for feat in FEATURES:
        cells = []
        for f in folds:
            rho = np.array([c[feat] for c in per_fold[f]])
            cells += [f"{np.nanmean(rho[:, i]):+.2f}" for i in range(3)]
        lines.append(f"| {feat} | " + " | ".join(cells) + " |")
    lines += ["", "Median score (bona fide logit) per fold, mean over seeds:", "",
              "| fold | dev bona fide | held-out attack |", "|---|---|---|"]
    lines += [f"| {f} | {np.mean([m[0] for m in medians[f]]):.2f} | {np.mean([m[1] for m in medians[f]]):.2f} |"
              for f in folds]
    Path(out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    click.echo("\n".join(lines))


if __name__ == "__main__":
    main()

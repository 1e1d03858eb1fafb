"""Experiment results: results.parquet (one row per variant x fold x seed x eval set), Markdown tables in the
paper's shape (rows variants, columns eval sets + average EER, mean ± std over seeds) and a bar chart.

A study that holds attacks out of training gets one column per fold (the held-out attacks) instead, in three
tables per eval set: EER on the held-out attack(s) (the figure of merit), on the seen attacks, on all spoofs."""
from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    from .config import Experiment

AVG = "avg"


def _cell(values: Sequence[float], digits: int) -> str:
    """mean ± sample std over seeds (just the mean for one seed)."""
    v = np.asarray(values, dtype=float)
    if len(v) == 0:
        return "–"
    return f"{v.mean():.{digits}f}" + (f" ± {v.std(ddof=1):.{digits}f}" if len(v) > 1 else "")


def summary(df: "pd.DataFrame", variants: Sequence[str], columns: Sequence[str], metric: str = "eer",
            by: str = "eval_set") -> dict[str, dict[str, list[float]]]:
    """variant -> column (values of `by`, then 'avg') -> per-seed values; avg = mean over the columns within a seed."""
    out: dict[str, dict[str, list[float]]] = {}
    for v in variants:
        d = df[(df.variant == v) & df[metric].notna()]
        cols = {c: d[d[by] == c].sort_values("seed")[metric].tolist() for c in columns}
        per_seed = d.pivot_table(index="seed", columns=by, values=metric)
        # a seed counts in the average only with every column (a partial study leaves some out)
        cols[AVG] = per_seed[list(columns)].dropna().mean(axis=1).tolist() if set(columns) <= set(per_seed.columns) else []
        out[v] = cols
    return out


def markdown_table(df: "pd.DataFrame", variants: Sequence[str], columns: Sequence[str], metric: str = "eer",
                   digits: int = 2, by: str = "eval_set", header: Sequence[str] | None = None) -> str:
    s = summary(df, variants, columns, metric, by)
    lines = ["| variant | " + " | ".join(header or columns) + f" | {AVG} |", "|---|" + "---|" * (len(columns) + 1)]
    for v in variants:
        lines.append(f"| {v} | " + " | ".join(_cell(s[v][c], digits) for c in [*columns, AVG]) + " |")
    return "\n".join(lines)


def bar_chart(df: "pd.DataFrame", variants: Sequence[str], evals: Sequence[str], path: Path, title: str,
              metric: str = "eer", by: str = "eval_set") -> Path:
    """Grouped bars: one group per variant, one bar per column (eval set or fold) + average; error bars = std over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = summary(df, variants, evals, metric, by)
    cols = [*evals, AVG] if len(evals) > 1 else list(evals)
    width = 0.8 / len(cols)
    x = np.arange(len(variants))
    fig, ax = plt.subplots(figsize=(max(5.0, 1.3 * len(variants) + 2), 3.8))
    for i, c in enumerate(cols):
        means = [np.mean(s[v][c]) if s[v][c] else np.nan for v in variants]
        stds = [np.std(s[v][c], ddof=1) if len(s[v][c]) > 1 else 0.0 for v in variants]
        ax.bar(x + (i - (len(cols) - 1) / 2) * width, means, width, yerr=stds, capsize=3, label=c)
    ax.set_xticks(x, variants, rotation=20, ha="right")
    ax.set_ylabel("EER (%)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def per_attack_table(df: "pd.DataFrame", variants: Sequence[str]) -> str | None:
    """EER (%) per attack of the rows in `df` (bona fide vs that attack's spoofs), mean ± std over seeds."""
    import json

    per = [(r.variant, json.loads(r.per_attack_eer)) for r in df.itertuples()] if "per_attack_eer" in df else []
    attacks = sorted({a for _, p in per for a in p if a != "-"})
    if len(attacks) < 2:
        return None
    lines = ["| variant | " + " | ".join(attacks) + " |", "|---|" + "---|" * len(attacks)]
    for v in variants:
        lines.append(f"| {v} | " + " | ".join(_cell([p[a] for name, p in per if name == v and a in p], 2)
                                             for a in attacks) + " |")
    return "\n".join(lines)


def _tables(df: "pd.DataFrame", exp: "Experiment", variants: Sequence[str], evals: Sequence[str]) -> list[str]:
    """The Markdown body: per eval set (columns) for a plain study, per fold and eval set for a held-out one."""
    from .config import fold_name

    if not exp.held_out:
        md = ["EER (%) per evaluation set, mean ± std over seeds "
              f"{', '.join(map(str, exp.seeds))}; {AVG} = mean over the eval sets within a seed.", "",
              markdown_table(df, variants, evals), "", "minDCF:", "",
              markdown_table(df, variants, evals, "min_dcf", 4), ""]
        for e in evals:
            if t := per_attack_table(df[df.eval_set == e], variants):
                md += [f"EER (%) per attack on {e} (bona fide vs each attack's spoofs):", "", t, ""]
        return md
    folds = [fold_name(f) for f in exp.folds]
    md = [f"Each fold trains without the attack(s) in its column (and without reconstructions of them) and is "
          f"evaluated on them as unseen attacks. Mean ± std over seeds {', '.join(map(str, exp.seeds))} "
          f"(a variant with its own `seeds` says so under Provenance; one seed shows its value alone); "
          f"{AVG} = mean over the folds within a seed.", ""]
    for e in evals:
        d = df[df.eval_set == e]
        md += [f"## {e}: EER (%) on the attack held out of training (the figure of merit)", "",
               markdown_table(d, variants, folds, "held_out_eer", by="fold",
                              header=[f"unseen {f}" for f in folds]), "",
               f"## {e}: EER (%) on the attacks seen in training (same checkpoints)", "",
               markdown_table(d, variants, folds, "seen_eer", by="fold", header=[f"without {f}" for f in folds]), "",
               f"## {e}: EER (%) on all spoofs, and minDCF", "",
               markdown_table(d, variants, folds, "eer", by="fold", header=[f"without {f}" for f in folds]), "",
               markdown_table(d, variants, folds, "min_dcf", 4, by="fold", header=[f"without {f}" for f in folds]), ""]
        for f in folds:
            if t := per_attack_table(d[d.fold == f], variants):
                md += [f"EER (%) per attack on {e}, trained without {f}:", "", t, ""]
    return md


def _invocations(out: Path) -> list[str]:
    import json

    path = out / "invocations.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
    return [f"- {d['finished']}: `{d['command']}`: {d['wall_seconds']:.0f} s wall ({d['wall_seconds'] / 60:.1f} min), "
            f"{d['trained']} of {d['runs']} runs trained" for d in map(json.loads, lines)]


def write_reports(rows: list[dict], exp: "Experiment", out: Path, missing: Sequence[str] = ()) -> list[str]:
    """OUT/results.parquet, OUT/results.md, OUT/results.png; returns their paths. `missing` names the runs
    left out (not finished when the report was written: `--finished-only`)."""
    import pandas as pd

    from .config import fold_name

    df = pd.DataFrame(rows)
    variants, evals = [v.name for v in exp.variants], [e.name for e in exp.evals]
    tmp = out / ".results.parquet.tmp"
    df.to_parquet(tmp, index=False)
    tmp.replace(out / "results.parquet")
    if exp.held_out:
        folds = [fold_name(f) for f in exp.folds]
        png = bar_chart(df[df.eval_set == evals[0]], variants, folds, out / "results.png",
                        f"{exp.name}: EER (%) on the held-out attack ({evals[0]})", "held_out_eer", "fold")
    else:
        png = bar_chart(df, variants, evals, out / "results.png", f"{exp.name}: EER (%), mean ± std over seeds")
    trained = df.drop_duplicates("run_dir")
    train_s = trained.train_seconds.dropna()
    dev_cols = [fold_name(f) for f in exp.folds] if exp.held_out else None
    md = [f"# {exp.name}", "", *_tables(df, exp, variants, evals),
          "Dev EER (%) of the checkpoint (the dev split, without held-out attacks, chose the epochs):", "",
          *([markdown_table(trained, variants, dev_cols, "dev_eer", by="fold", header=[f"without {f}" for f in dev_cols])]
            if dev_cols else
            ["| variant | dev EER |", "|---|---|",
             *[f"| {v} | {_cell(trained[trained.variant == v].sort_values('seed').dev_eer.tolist(), 2)} |"
               for v in variants]]),
          "", "## Provenance", "",
          f"- written {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; invocations (OUT/invocations.jsonl):",
          *["  " + line for line in _invocations(out)],
          f"- training time per run (when first trained): mean {train_s.mean():.0f} s, total {train_s.sum():.0f} s"
          if len(train_s) else "",
          f"- **not finished, left out of every cell above ({len(missing)}):** " + "; ".join(missing) if missing else "",
          "- eval clips: " + ", ".join(f"{e} {int(df[df.eval_set == e].n_clips.iloc[0])}" for e in evals),
          "- variants: " + "; ".join(f"{v.name} = {v.run.model.frontend}/{v.run.model.aggregation}/{v.run.train.loss}"
                                     f" + [{', '.join(v.reconstructions) or 'no reconstructions'}]" + _mining(v)
                                     + (f", seeds {', '.join(map(str, v.seeds))}" if v.seeds else "")
                                     for v in exp.variants)]
    (out / "results.md").write_text("\n".join(line for line in md if line is not None) + "\n", encoding="utf-8")
    return [str(out / "results.parquet"), str(out / "results.md"), str(png)]


def _mining(v) -> str:
    """How a mining variant chose its reconstructions, for the provenance line."""
    m = v.mine
    if m is None:
        return ""
    how = "the hardest" if m.select == "hard" else "a random"
    scorer = f" (scored by a round-1 detector trained on {'a random draw of them' if m.round1 == 'random' else 'none of them'})" \
        if m.select == "hard" else ""
    return f" + {how} {m.keep:g} of each {m.per}'s {m.candidates} reconstructions{scorer}"

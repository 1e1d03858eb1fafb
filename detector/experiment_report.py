"""Experiment results: results.parquet (one row per variant x seed x eval set), a Markdown table in the
paper's shape (rows variants, columns eval sets + average EER, mean ± std over seeds) and a bar chart."""
from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    from .experiment_config import Experiment

AVG = "avg"


def _cell(values: Sequence[float], digits: int) -> str:
    """mean ± sample std over seeds (just the mean for one seed)."""
    v = np.asarray(values, dtype=float)
    if len(v) == 0:
        return "–"
    return f"{v.mean():.{digits}f}" + (f" ± {v.std(ddof=1):.{digits}f}" if len(v) > 1 else "")


def summary(df: "pd.DataFrame", variants: Sequence[str], evals: Sequence[str], metric: str = "eer"
            ) -> dict[str, dict[str, list[float]]]:
    """variant -> column (eval sets, then 'avg') -> per-seed values; avg = mean over eval sets within a seed."""
    out: dict[str, dict[str, list[float]]] = {}
    for v in variants:
        d = df[df.variant == v]
        cols = {e: d[d.eval_set == e].sort_values("seed")[metric].tolist() for e in evals}
        per_seed = d.pivot_table(index="seed", columns="eval_set", values=metric)
        cols[AVG] = per_seed[list(evals)].mean(axis=1).tolist() if set(evals) <= set(per_seed.columns) else []
        out[v] = cols
    return out


def markdown_table(df: "pd.DataFrame", variants: Sequence[str], evals: Sequence[str], metric: str = "eer",
                   digits: int = 2) -> str:
    s = summary(df, variants, evals, metric)
    lines = ["| variant | " + " | ".join(evals) + f" | {AVG} |", "|---|" + "---|" * (len(evals) + 1)]
    for v in variants:
        lines.append(f"| {v} | " + " | ".join(_cell(s[v][c], digits) for c in [*evals, AVG]) + " |")
    return "\n".join(lines)


def bar_chart(df: "pd.DataFrame", variants: Sequence[str], evals: Sequence[str], path: Path, title: str) -> Path:
    """Grouped bars: one group per variant, one bar per eval set + average; error bars = std over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = summary(df, variants, evals)
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


def write_reports(rows: list[dict], exp: "Experiment", out: Path, command: str = "", seconds: float | None = None
                  ) -> list[str]:
    """OUT/results.parquet, OUT/results.md, OUT/results.png; returns their paths."""
    import pandas as pd

    df = pd.DataFrame(rows)
    variants, evals = [v.name for v in exp.variants], [e.name for e in exp.evals]
    tmp = out / ".results.parquet.tmp"
    df.to_parquet(tmp, index=False)
    tmp.replace(out / "results.parquet")
    png = bar_chart(df, variants, evals, out / "results.png", f"{exp.name}: EER (%), mean ± std over seeds")
    trained = df.drop_duplicates("run_dir")
    train_s = trained.train_seconds.dropna()
    md = [f"# {exp.name}", "",
          f"EER (%) per evaluation set, mean ± std over seeds {', '.join(map(str, exp.seeds))}; "
          f"{AVG} = mean over the eval sets within a seed.", "",
          markdown_table(df, variants, evals), "",
          "minDCF:", "", markdown_table(df, variants, evals, "min_dcf", 4), "",
          "Dev EER (%) of the checkpoint (the split used for early stopping and epoch averaging):", "",
          "| variant | dev EER |", "|---|---|",
          *[f"| {v} | {_cell(trained[trained.variant == v].sort_values('seed').dev_eer.tolist(), 2)} |" for v in variants],
          "", "## Provenance", "",
          f"- written {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
          f"- command: `{command}`" if command else "",
          f"- wall time of this invocation: {seconds:.0f} s ({seconds / 60:.1f} min); runs trained now: "
          f"{int(trained.trained_now.sum())} of {len(trained)}" if seconds is not None else "",
          f"- training time per run (as first trained): mean {train_s.mean():.0f} s, total {train_s.sum():.0f} s"
          if len(train_s) else "",
          f"- eval clips: " + ", ".join(f"{e} {int(df[df.eval_set == e].n_clips.iloc[0])}" for e in evals),
          "- variants: " + "; ".join(f"{v.name} = {v.run.model.aggregation}/{v.run.train.loss}"
                                     f" + [{', '.join(v.reconstructions) or 'no reconstructions'}]" for v in exp.variants)]
    (out / "results.md").write_text("\n".join(line for line in md if line is not None) + "\n", encoding="utf-8")
    return [str(out / "results.parquet"), str(out / "results.md"), str(png)]

"""What separates bona fide from spoof in the dev corpus besides the generator (issue 28, section 2).

Per clip: the trivial cues of cue_features.py (silence, bandwidth, codec history, level, duration). Writes
OUT/<name>.md (median [IQR] per class/attack and split; a logistic regression per feature group trained
leave-one-attack-out exactly like experiments/dev-corpus.yaml: train split without the held-out attack, EER
on the dev split's bona fide vs the held-out attack; and the same trained on bona fide vs each attack), and
OUT/<name>-ltas.png (long-term average spectra), OUT/<name>-features.png (distributions).

    .venv/bin/python experiments/recipe/cues.py [--corpus ../shared/data/dev-corpus] \
        [--out experiments/results/recipe] [--name cues]

The corpus defaults to $DEV_CORPUS, else ../shared/data/dev-corpus next to the repo.
"""
from __future__ import annotations

import csv
import os
import shlex
import sys
from pathlib import Path

import click
import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from cue_features import FEATURES, GROUPS, clip_features, freqs, ltas_db  # noqa: E402
from detector.scoring.metrics import eer  # noqa: E402
from manifests.errors import UsageError  # noqa: E402

DEFAULT_CORPUS = os.environ.get("DEV_CORPUS", str(REPO.parent / "shared" / "data" / "dev-corpus"))
ATTACK_ORDER = ["-", "espeak-cs", "festival-cs", "mlsa-cs"]


def load_rows(corpus: Path) -> list[dict]:
    """Protocol rows of `corpus`, each with its features and `ltas` ((257,) dB) added."""
    proto = corpus / "protocol.csv"
    if not proto.is_file():
        raise UsageError(f"--corpus {corpus}: no protocol.csv there; expected the dev corpus folder")
    with open(proto, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    missing = {"path", "label", "attack", "split"} - set(rows[0] if rows else {})
    if missing:
        raise UsageError(f"{proto}: missing column(s) {sorted(missing)}")
    for r in rows:
        wav, sr = sf.read(corpus / r["path"], dtype="float64", always_2d=True)
        wav = wav.mean(axis=1)
        if sr != 16000:
            raise UsageError(f"{r['path']}: {sr} Hz; the cues are defined at 16 kHz")
        r.update(clip_features(wav, sr))
        r["ltas"] = ltas_db(wav)
    return rows


def held_out_eer(rows: list[dict], feats: list[str], held_out: str, seen_only: bool) -> float:
    """EER (%) of a logistic regression on `feats`: seen_only=True trains on the train split without
    `held_out` (leave-one-attack-out), False on train bona fide vs `held_out` only (in-domain); scored on the
    dev split's bona fide vs `held_out`. Higher score = bona fide."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def xy(sel):
        x = np.array([[r[f] for f in feats] for r in sel])
        return x, np.array([r["label"] == "bonafide" for r in sel])

    train = [r for r in rows if r["split"] == "train"
             and ((r["attack"] != held_out) if seen_only else (r["attack"] in ("-", held_out)))]
    test = [r for r in rows if r["split"] == "dev" and r["attack"] in ("-", held_out)]
    model = make_pipeline(StandardScaler(), LogisticRegression(class_weight="balanced", max_iter=1000))
    model.fit(*xy(train))
    x, y = xy(test)
    s = model.decision_function(x)
    return 100 * eer(s[y], s[~y])[0]


def _stat(values: list[float]) -> str:
    q1, med, q3 = np.percentile(values, [25, 50, 75])
    return f"{med:.3g} [{q1:.3g}, {q3:.3g}]"


def feature_tables(rows: list[dict]) -> list[str]:
    out = []
    for part in (FEATURES[:7], FEATURES[7:]):
        out += ["| split | class/attack | n | " + " | ".join(part) + " |", "|---|---|---|" + "---|" * len(part)]
        for split in ("train", "dev"):
            for a in ATTACK_ORDER:
                sel = [r for r in rows if r["split"] == split and r["attack"] == a]
                if sel:
                    cells = [_stat([r[f] for r in sel]) for f in part]
                    out.append(f"| {split} | {a if a != '-' else 'bona fide'} | {len(sel)} | " + " | ".join(cells) + " |")
        out.append("")
    return out


def classifier_table(rows: list[dict], attacks: list[str]) -> list[str]:
    sets = {**{f"group: {g}": f for g, f in GROUPS.items()}, "all features": FEATURES,
            "all but silence": [f for f in FEATURES if f not in GROUPS["silence"]]}
    sets.update({f"single: {f}": [f] for f in FEATURES})
    head = " | ".join(f"held-out {a}" for a in attacks) + " | held-out avg | " + \
           " | ".join(f"in-domain {a}" for a in attacks)
    out = [f"| features | {head} |", "|---|" + "---|" * (2 * len(attacks) + 1)]
    for name, feats in sets.items():
        ho = [held_out_eer(rows, feats, a, True) for a in attacks]
        ind = [held_out_eer(rows, feats, a, False) for a in attacks]
        out.append(f"| {name} | " + " | ".join(f"{v:.1f}" for v in ho) + f" | {np.mean(ho):.1f} | "
                   + " | ".join(f"{v:.1f}" for v in ind) + " |")
    return out


def plot_ltas(rows: list[dict], dest: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    f = freqs(16000)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    for ax, split in zip(axes[:2], ("train", "dev")):
        for a in ATTACK_ORDER:
            sel = [r["ltas"] for r in rows if r["split"] == split and r["attack"] == a]
            if sel:   # mean power over clips, in dB
                ax.plot(f, 10 * np.log10(np.mean(10 ** (np.array(sel) / 10), axis=0)),
                        label=f"{a if a != '-' else 'bona fide'} (n={len(sel)})")
        ax.set(title=f"long-term average spectrum, {split} split", xlabel="Hz", ylabel="dB re. full scale")
        ax.grid(alpha=.3)
        ax.legend()
    bona = np.mean([10 ** (r["ltas"] / 10) for r in rows if r["attack"] == "-"], axis=0)
    for a in ATTACK_ORDER[1:]:
        sel = [10 ** (r["ltas"] / 10) for r in rows if r["attack"] == a]
        if sel:
            axes[2].plot(f, 10 * np.log10(np.mean(sel, axis=0) / bona), label=a)
    axes[2].axhline(0, color="k", lw=.5)
    axes[2].set(title="attack minus bona fide (both splits)", xlabel="Hz", ylabel="dB")
    axes[2].grid(alpha=.3)
    axes[2].legend()
    fig.tight_layout()
    fig.savefig(dest, dpi=90)
    plt.close(fig)


def plot_features(rows: list[dict], dest: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(4, 4, figsize=(16, 13))
    labels = [a if a != "-" else "bona fide" for a in ATTACK_ORDER]
    for ax, feat in zip(axes.flat, FEATURES):
        data, ticks = [], []
        for a, lab in zip(ATTACK_ORDER, labels):
            for split in ("train", "dev"):
                data.append([r[feat] for r in rows if r["attack"] == a and r["split"] == split] or [np.nan])
                ticks.append(f"{lab}\n{split}")
        ax.boxplot(data, showfliers=False)
        ax.set_xticks(range(1, len(ticks) + 1), ticks, fontsize=6)
        ax.set_title(feat)
        ax.grid(alpha=.3)
    fig.tight_layout()
    fig.savefig(dest, dpi=80)
    plt.close(fig)


@click.command()
@click.option("--corpus", default=DEFAULT_CORPUS, show_default=True, type=click.Path(file_okay=False),
              help="Corpus folder with protocol.csv (path,label,attack,split). Env: DEV_CORPUS.")
@click.option("--out", default=str(REPO / "experiments" / "results" / "recipe"), show_default=True,
              type=click.Path(file_okay=False), help="Output folder.")
@click.option("--name", default="cues", show_default=True, help="Stem of the output files.")
def main(corpus: str, out: str, name: str) -> None:
    try:
        rows = load_rows(Path(corpus))
    except UsageError as e:
        raise click.UsageError(str(e)) from None
    attacks = [a for a in ATTACK_ORDER[1:] if any(r["attack"] == a for r in rows)]
    dest = Path(out)
    dest.mkdir(parents=True, exist_ok=True)
    plot_ltas(rows, dest / f"{name}-ltas.png")
    plot_features(rows, dest / f"{name}-features.png")
    argv = " ".join(shlex.quote(a) for a in sys.argv[1:])
    lines = [f"# Trivial cues of {Path(corpus).name}", "",
             f"Written by `.venv/bin/python experiments/recipe/cues.py {argv}` (features: cue_features.py).", "",
             "## Per class and attack: median [25th, 75th percentile]", "",
             "quiet_pct: % of 25 ms frames > 40 dB below the loudest; lead_s/trail_s: before the first / after the "
             "last frame within 35 dB of the loudest; floor10_dbfs: 10th percentile of the 25 ms frame energies (the "
             "pauses' noise floor); zero_pct: % of samples that are 16-bit zeros; hf6_db: energy above 6 kHz re. total; rolloff99_hz: 99 % "
             "of the energy below; band7k_db: energy in 7-7.8 kHz re. total; edge50_hz: highest frequency whose "
             "long-term level is within 50 dB of the spectrum's peak; holes_pct: % of 2-7.5 kHz bins of speech "
             "frames > 20 dB below their 9-bin median (zeroed codec bands); dc_dbfs: |mean sample| in dBFS.", ""]
    lines += feature_tables(rows)
    lines += ["## Logistic regression on trivial features: dev EER (%)", "",
              "held-out A: trained on the train split without A (bona fide + the other attacks), scored on the "
              "dev split's bona fide vs A, as the detector study does. in-domain A: trained on the train split's "
              "bona fide vs A only, same scoring (can the cue separate A at all?). 50 = chance; above 50 = the "
              "cue learned on the other attacks points the wrong way for A.", ""]
    lines += classifier_table(rows, attacks)
    lines += ["", f"Figures: `{name}-ltas.png` (long-term average spectra), `{name}-features.png` "
              "(per-feature distributions, train and dev)."]
    (dest / f"{name}.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    click.echo(f"{len(rows)} clips -> {dest / (name + '.md')}")


if __name__ == "__main__":
    main()

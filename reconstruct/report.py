"""`reconstruct report`: one self-contained HTML page to look at and listen to a run's hard samples.

The page holds, with every image and audio clip embedded as a data: URI (one file to mail or open
offline): clip and audio-hour counts per model and split; LSD and SNR histograms per model; and N
examples, each a bona fide original beside each of its reconstructions, with a spectrogram and an
`<audio>` player per clip (the manifest's own FLAC bytes).
"""
from __future__ import annotations

import base64
import html
import io
from collections import defaultdict

import numpy as np

import manifests
from manifests import storage
from manifests.audio import load_audio
from manifests.errors import UsageError

from .figures import _log_spec

_STYLE = ("body{font-family:sans-serif;margin:2em;max-width:75em}table{border-collapse:collapse;margin:1em 0}"
          "td,th{border:1px solid #ccc;padding:.3em .6em;text-align:right}th{background:#f4f4f4}"
          ".ex{display:flex;gap:1em;flex-wrap:wrap;margin:1em 0 2em}.clip{width:17em}.clip img{width:100%}"
          ".clip audio{width:100%}.meta{font-size:.8em;color:#555}")


def _data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    return _data_uri(buf.getvalue(), "image/png")


def _spectrogram(path: str, seconds: float) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    wav, _ = load_audio(path, sr=16000)
    spec = _log_spec(wav[: int(seconds * 16000)])
    fig, ax = plt.subplots(figsize=(3.4, 1.8))
    ax.imshow(spec, origin="lower", aspect="auto", cmap="magma", vmin=spec.max() - 80, vmax=spec.max(),
              extent=(0, spec.shape[1] * 128 / 16000, 0, 8))
    ax.set_xlabel("s", fontsize=7)
    ax.set_ylabel("kHz", fontsize=7)
    ax.tick_params(labelsize=6)
    fig.tight_layout()
    return _png(fig)


def _histograms(rows: list[dict]) -> str | None:
    """One figure: LSD and SNR histograms, one curve per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_model: dict[str, dict[str, list[float]]] = defaultdict(lambda: {"lsd_db": [], "snr_db": []})
    for r in rows:
        for k in ("lsd_db", "snr_db"):
            if r.get(k) is not None and np.isfinite(r[k]):
                by_model[r["model"]][k].append(float(r[k]))
    if not by_model:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(10, 3))
    for ax, key, label in ((axes[0], "lsd_db", "log-spectral distance to the original (dB)"),
                           (axes[1], "snr_db", "SNR against the original (dB)")):
        for model, values in sorted(by_model.items()):
            if values[key]:
                ax.hist(values[key], bins=30, histtype="step", label=f"{model} (n={len(values[key])})")
        ax.set_xlabel(label)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return _png(fig)


def _counts_table(rows: list[dict]) -> str:
    counts: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0, 0.0])
    for r in rows:
        key = (r["model"] or "original", r["split"] or "-")
        counts[key][0] += 1
        counts[key][1] += float(r["duration_s"] or 0.0) / 3600
    splits = sorted({s for _, s in counts})
    models = sorted({m for m, _ in counts}, key=lambda m: (m != "original", m))
    head = "".join(f"<th>{html.escape(s)} clips</th><th>{html.escape(s)} hours</th>" for s in splits)
    body = "".join(
        f"<tr><th>{html.escape(m)}</th>" + "".join(
            f"<td>{counts[(m, s)][0]}</td><td>{counts[(m, s)][1]:.3f}</td>" for s in splits) + "</tr>"
        for m in models)
    return f"<table><tr><th>model</th>{head}</tr>{body}</table>"


def _clip_cell(title: str, row: dict, seconds: float) -> str:
    audio = _data_uri(storage.read_bytes(row["path"]), "audio/flac" if str(row["path"]).endswith(".flac")
                      else "audio/wav")
    meta = f"{row['duration_s']:.2f} s" if row.get("duration_s") else ""
    if row.get("lsd_db") is not None:
        meta += f", LSD {row['lsd_db']:.1f} dB, SNR {row['snr_db']:.1f} dB"
    return (f'<div class="clip"><b>{html.escape(title)}</b><div class="meta">{html.escape(meta)}</div>'
            f'<img alt="spectrogram of {html.escape(title)}" src="{_spectrogram(row["path"], seconds)}">'
            f'<audio controls preload="none" src="{audio}"></audio></div>')


def write_report(run_dir: str, out: str | None = None, examples: int = 5, seconds: float = 4.0) -> str:
    """Write RUN_DIR/report.html (or `out`) for the manifest of a `reconstruct run` output folder (or of a
    manifest given directly: then NAME.report.html beside it); returns its location. Examples: the first
    `examples` bona fide originals (by utt_id) that have a reconstruction, each with all of them."""
    found = storage.kind(run_dir)
    if found is None:
        raise UsageError(f"{run_dir} does not exist; give a `reconstruct run` output folder or a manifest")
    manifest = storage.join(run_dir, "manifest") if storage.kind(storage.join(run_dir, "manifest")) else run_dir
    rows = [r for r in manifests.read(manifest).to_pylist() if r["status"] == "ok"]
    recons = [r for r in rows if r["kind"] == "reconstruction"]
    if not recons:
        raise UsageError(f"{run_dir} holds no reconstructions to report on (run `reconstruct run` first)")
    by_source: dict[str, list[dict]] = defaultdict(list)
    for r in recons:
        by_source[r["source_id"]].append(r)
    originals = sorted((r for r in rows if r["kind"] == "original" and r["label"] == "bonafide"
                        and r["utt_id"] in by_source), key=lambda r: r["utt_id"])[:examples]
    hist = _histograms(recons)
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>hardspoof report: "
             f"{html.escape(storage.name(run_dir))}</title><style>{_STYLE}</style></head><body>",
             f"<h1>Hard samples of {html.escape(storage.name(run_dir))}</h1>",
             "<h2>Clips and hours per model and split</h2>", _counts_table(rows),
             "<h2>How far each reconstruction is from its original</h2>",
             f'<img alt="LSD and SNR histograms per model" src="{hist}">' if hist else "<p>no distances recorded</p>",
             "<p class='meta'>LSD is the meaningful distance for phase-free reconstructions (vocoders, "
             "diffusion): they invent their own phase, so their SNR is near or below 0 dB.</p>",
             f"<h2>{len(originals)} examples: each original beside its reconstructions</h2>"]
    for o in originals:
        cells = [_clip_cell("original", o, seconds)]
        cells += [_clip_cell(r["model"], r, seconds) for r in sorted(by_source[o["utt_id"]], key=lambda r: r["model"])]
        parts.append(f"<h3>{html.escape(o['utt_id'])}</h3><div class='ex'>{''.join(cells)}</div>")
    parts.append("</body></html>")
    dest = out or (storage.join(run_dir, "report.html") if found == storage.DIR
                   else storage.join(storage.parent(run_dir), storage.name(run_dir).rsplit(".", 1)[0] + ".report.html"))
    try:
        return storage.write_atomic(dest, lambda fh: fh.write("\n".join(parts).encode("utf-8")))
    except OSError as e:
        raise UsageError(f"cannot write the report to {dest}: {e.strerror or e}") from None

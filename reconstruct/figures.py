"""Side-by-side spectrograms: each original beside its reconstructions, one row per clip."""
from __future__ import annotations

from pathlib import Path

import numpy as np

import manifests
from manifests import storage
from manifests.audio import load_audio

from .hardness import power_spectrogram


def _log_spec(wav: np.ndarray) -> np.ndarray:
    """(freq, frames) log power in dB, the same STFT (n_fft 512, hop 128) as `lsd_db` at 16 kHz."""
    return (10 * np.log10(power_spectrogram(wav, 512) + 1e-10)).T


def spectrogram_grid(manifest: str | Path, out_png: str | Path, clips: int = 3, seconds: float = 3.0) -> str:
    """Write a PNG: rows = the first `clips` bona fide originals with reconstructions, columns =
    original + each model; the first `seconds` of each, 16 kHz log-power spectrograms."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in manifests.read(manifest).to_pylist() if r["status"] == "ok"]
    recon: dict[str, dict[str, str]] = {}
    for r in rows:
        if r["kind"] == "reconstruction":
            recon.setdefault(r["source_id"], {})[r["model"]] = r["path"]
    originals = [r for r in rows if r["kind"] == "original" and r["label"] == "bonafide" and r["utt_id"] in recon]
    originals = sorted(originals, key=lambda r: r["utt_id"])[:clips]
    models = sorted({m for o in originals for m in recon[o["utt_id"]]})
    if not originals:
        raise ValueError(f"{manifest} has no bona fide original with a reconstruction to plot")
    fig, axes = plt.subplots(len(originals), 1 + len(models), figsize=(3.2 * (1 + len(models)), 2.4 * len(originals)),
                             squeeze=False, sharey=True)
    for i, o in enumerate(originals):
        paths = [("original", o["path"])] + [(m, recon[o["utt_id"]].get(m)) for m in models]
        for j, (title, path) in enumerate(paths):
            ax = axes[i][j]
            if path:
                wav, _ = load_audio(path, sr=16000)
                spec = _log_spec(wav[: int(seconds * 16000)])
                ax.imshow(spec, origin="lower", aspect="auto", cmap="magma", vmin=spec.max() - 80, vmax=spec.max(),
                          extent=(0, spec.shape[1] * 128 / 16000, 0, 8))
            ax.set_title(title if i == 0 else "", fontsize=9)
            ax.set_xlabel("s" if i == len(originals) - 1 else "")
            ax.set_ylabel(f"{o['utt_id'].split('/')[-1][:16]}\nkHz" if j == 0 else "", fontsize=8)
    fig.tight_layout()
    try:
        return storage.write_atomic(out_png, lambda fh: fig.savefig(fh, dpi=90, format="png"))
    finally:
        plt.close(fig)

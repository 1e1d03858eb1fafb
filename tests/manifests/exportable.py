"""A manifest worth exporting: corpus originals in two splits, reconstructions without a split of their own
(they follow their source), a failed row, and a part file holding an older, failed row of a clip."""
from __future__ import annotations

import datetime
from pathlib import Path

import numpy as np
import soundfile as sf

import manifests
from manifests.audio import describe
from manifests.corpus import import_corpus
from tests.conftest import write_corpus


def exportable_manifest(root: Path, n_bonafide: int = 4, n_spoof: int = 2, seconds: float = 1.0) -> Path:
    """root/manifest/ (two parts) over root/corpus and root/recon; returns the manifest folder."""
    corpus = write_corpus(root / "corpus", n_bonafide=n_bonafide, n_spoof=n_spoof, seconds=seconds)
    rows = import_corpus(corpus)
    now = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    recons = []
    for r in rows:
        if r["label"] != "bonafide":
            continue
        wav, sr = sf.read(r["path"], dtype="float32")
        path = root / "recon" / f"{r['utt_id'].replace('/', '_')}.flac"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, np.convolve(wav, np.ones(4) / 4, mode="same").astype(np.float32), sr)
        recons.append(dict(r, **describe(path), utt_id=r["utt_id"] + "__fake-vocoder", path=str(path), label="spoof",
                           kind="reconstruction", source_id=r["utt_id"], method="vocoder", model="fake-vocoder",
                           params='{"n": 4}', seed=7, attack="fake-vocoder", split=None, snr_db=12.5, lsd_db=3.25,
                           created_at=now, run_id="run-1", toolkit_version="0.1.0"))
    failed = dict(manifests.empty_row(), utt_id="broken", path=str(root / "missing.flac"), label="bonafide",
                  kind="original", source_id="broken", attack="-", split="train", status="failed", error="cannot decode")
    folder = root / "manifest"
    manifests.write_part(rows + recons + [failed], folder, "part-0")
    stale = dict(recons[0], status="failed", error="an older attempt",
                 created_at=now - datetime.timedelta(days=1), path=str(root / "gone.flac"))
    manifests.write_part([stale], folder, "part-1")  # loses to the ok row of the same utt_id
    return folder


def ok_rows(manifest: Path) -> dict[str, dict]:
    """{utt_id: row} of the manifest's rows an export must carry (status ok)."""
    return {r["utt_id"]: r for r in manifests.read(manifest).to_pylist() if r["status"] == "ok"}

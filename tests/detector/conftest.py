"""Detector fixtures: a tiny manifest of originals + fake reconstructions, tiny training configs."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import manifests
from manifests.corpus import import_corpus
from tests.conftest import write_corpus

from detector.config import DataConfig, ModelConfig, RunConfig, TrainConfig

torch.set_num_threads(1)


def make_manifest(root: Path, n_bonafide: int = 4, n_spoof: int = 2, seconds: float = 1.0,
                  recon_method: str = "vocoder") -> Path:
    """Corpus originals + one low-passed 'reconstruction' of every bona fide original -> root/m.parquet."""
    corpus = write_corpus(root / "corpus", n_bonafide=n_bonafide, n_spoof=n_spoof, seconds=seconds)
    rows = import_corpus(corpus)
    recons = []
    for r in rows:
        if r["label"] != "bonafide":
            continue
        wav, sr = sf.read(r["path"], dtype="float32")
        smooth = np.convolve(wav, np.ones(4) / 4, mode="same").astype(np.float32)
        path = root / "recon" / f"{r['utt_id'].replace('/', '_')}.flac"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, smooth, sr)
        rec = dict(r, utt_id=r["utt_id"] + "__rec", path=str(path), label="spoof", kind="reconstruction",
                   source_id=r["utt_id"], method=recon_method, model="fake-" + recon_method,
                   split=None)  # split deliberately left out: it must follow the source
        recons.append(rec)
    return Path(manifests.write(rows + recons, root / "m.parquet"))


def tiny_config(**train) -> RunConfig:
    """tiny front-end + linear back-end, 0.5 s crops, 1 epoch of 2 steps, no augmentation."""
    return RunConfig(
        data=DataConfig(crop=8000, batch_size=2, augment=False),
        model=ModelConfig(frontend="tiny", backend="linear", aggregation="attn", tiny_hidden=16, embed_dim=16,
                          proj_dim=16, gat_dim=8, dropout=0.0),
        train=TrainConfig(**{"epochs": 1, "max_steps": 2, "average_last": 2, **train}))


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    return make_manifest(tmp_path)

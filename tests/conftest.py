"""Shared fixtures: offline environment, synthetic speech-like audio, one Ray instance per session."""
from __future__ import annotations

import os
import sys

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("HARDSPOOF_MODELS", os.path.join(os.path.dirname(__file__), ".no-model-store"))

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import soundfile as sf  # noqa: E402


def speechlike(seconds: float = 1.0, sr: int = 16000, seed: int = 0, f0: float = 140.0) -> np.ndarray:
    """A voiced, syllable-modulated harmonic signal with noise: (T,) float32 in [-1, 1]."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    pitch = f0 * (1 + 0.1 * np.sin(2 * np.pi * 0.7 * t))
    phase = 2 * np.pi * np.cumsum(pitch) / sr
    x = sum(np.sin(k * phase) / k for k in range(1, 12))
    x *= 0.5 + 0.5 * np.sin(2 * np.pi * 3.5 * t) ** 2
    x += 0.02 * rng.standard_normal(t.shape)
    return (0.4 * x / np.abs(x).max()).astype(np.float32)


def write_corpus(root: Path, n_bonafide: int = 4, n_spoof: int = 2, sr: int = 16000,
                 seconds: float = 1.0) -> Path:
    """A tiny corpus with protocol.csv (train/dev split, two speakers) under root; returns root."""
    lines = ["path,label,attack,speaker,language,split"]
    for i in range(n_bonafide):
        rel = f"bonafide/spk{i % 2}/utt{i}.flac"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        sf.write(root / rel, speechlike(seconds, sr, seed=i, f0=110 + 20 * i), sr)
        lines.append(f"{rel},bonafide,-,spk{i % 2},xx,{'train' if i % 2 == 0 else 'dev'}")
    for i in range(n_spoof):
        rel = f"spoof/tts{i}.flac"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        x = speechlike(seconds, sr, seed=100 + i, f0=200)
        sf.write(root / rel, np.round(x * 8) / 8, sr)  # coarse quantisation: an easy "attack"
        lines.append(f"{rel},spoof,A0{i % 2 + 1},tts,xx,{'train' if i % 2 == 0 else 'dev'}")
    (root / "protocol.csv").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture(autouse=True)
def _drop_broken_lazy_modules():
    """speechbrain leaves lazy placeholders for optional integrations (k2, ...) in sys.modules;
    hypothesis reads `__file__` of every module and would trip over them. Drop the broken ones."""
    for name, module in list(sys.modules.items()):
        if type(module).__name__ in ("LazyModule", "DeprecatedModuleRedirect"):
            try:
                getattr(module, "__file__", None)
            except Exception:  # noqa: BLE001 - an optional integration that cannot import
                del sys.modules[name]
    yield


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A generated 4 bona fide + 2 spoof corpus with protocol.csv."""
    return write_corpus(tmp_path / "corpus")


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray instance for the whole test session (2 CPUs)."""
    ray = pytest.importorskip("ray")
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}})
    yield ray
    ray.shutdown()

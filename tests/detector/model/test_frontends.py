"""Pretrained front-ends load through the real path: a tiny random Wav2Vec2 saved with save_pretrained."""
from pathlib import Path

import pytest
import torch
from transformers import Wav2Vec2Model

from detector import checkpoint
from detector.model.frontends import build_frontend, tiny_config
from detector.training.loop import train
from manifests.errors import UsageError

from ..conftest import tiny_config as tiny_run


@pytest.fixture
def store(tmp_path: Path, monkeypatch) -> Path:
    """A model store holding a tiny random model under XLS-R's name."""
    Wav2Vec2Model(tiny_config(16, 2)).save_pretrained(tmp_path / "store" / "wav2vec2-xls-r-300m")
    monkeypatch.setenv("HARDSPOOF_MODELS", str(tmp_path / "store"))
    return tmp_path / "store"


def test_xlsr_loads_from_store_frozen(store: Path):
    fe = build_frontend("xlsr")
    assert fe.num_layers == 3 and not any(p.requires_grad for p in fe.parameters())
    h = fe.train()(torch.randn(2, 4000))
    assert h.shape[:2] == (2, 3) and not fe.encoder.training and not h.requires_grad
    assert any(p.requires_grad for p in build_frontend("xlsr", finetune=True).parameters())


def test_hf_folder(store: Path):
    fe = build_frontend(f"hf:{store / 'wav2vec2-xls-r-300m'}")
    assert fe(torch.randn(1, 4000)).shape[1] == 3


def test_offline_without_weights_names_model_and_fix(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("HARDSPOOF_MODELS", str(tmp_path / "empty"))
    with pytest.raises(UsageError, match="wav2vec2-xls-r-300m.*huggingface-cli download") as e:
        build_frontend("xlsr")
    assert "--frontend ge2e|lfcc|rawgat-st|rawnetlite|sinc|sinc-l|tiny" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(UsageError, match="allowed: xlsr, hf:<hub-id-or-folder>, ge2e, lfcc, rawgat-st, rawnetlite, sinc, sinc-l, tiny"):
        build_frontend("bert")


def test_xlsr_shaped_training_run(store: Path, manifest: Path, tmp_path: Path):
    cfg = tiny_run().replace("model", frontend="xlsr")
    train([str(manifest)], tmp_path / "run", cfg, progress=False)
    model, saved, _ = checkpoint.load(tmp_path / "run")
    from safetensors.torch import load_file
    keys = load_file(str(tmp_path / "run" / "final" / "model.safetensors")).keys()
    assert not any(k.startswith("frontend.") for k in keys)  # frozen front-end re-resolved, not copied
    assert saved.model.frontend == "xlsr" and model.score(torch.randn(1, 8000)).shape == (1,)


def test_checkpoint_from_other_config_is_refused(manifest: Path, tmp_path: Path):
    train([str(manifest)], tmp_path / "run", tiny_run(), progress=False)
    cfg_path = tmp_path / "run" / "final" / "config.json"
    cfg_path.write_text(cfg_path.read_text().replace('"tiny_hidden": 16', '"tiny_hidden": 24'))
    with pytest.raises(UsageError, match="do not fit the model built from its config"):
        checkpoint.load(tmp_path / "run")
    with pytest.raises(UsageError, match="different model config"):
        checkpoint.load(tmp_path / "run", tiny_run().replace("model", backend="aasist"))


def test_hf_hubert_and_wavlm_folders(tmp_path: Path):
    from transformers import HubertConfig, HubertModel, WavLMConfig, WavLMModel
    small = dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16,
                 conv_dim=(16, 16), conv_kernel=(10, 3), conv_stride=(5, 2), num_conv_pos_embeddings=8,
                 num_conv_pos_embedding_groups=2)
    for name, cls, cfg in (("hubert", HubertModel, HubertConfig), ("wavlm", WavLMModel, WavLMConfig)):
        cls(cfg(**small)).save_pretrained(tmp_path / name)
        fe = build_frontend(f"hf:{tmp_path / name}")
        assert fe(torch.randn(1, 1600)).shape[:2] == (1, 2)

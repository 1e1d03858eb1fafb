"""Front-ends: every one maps wav (B, T) at 16 kHz to all its layers (B, L, T', D).

A front-end has `num_layers`, `dim`, `trainable` (are its weights trained), `pretrained` (are its weights
loaded from a source, so a checkpoint need not copy them while they stay frozen) and optionally
`map_channels` (its frames are flattened spectro-temporal maps, see model/backends/aasist.py).

`xlsr`  facebook/wav2vec2-xls-r-300m through transformers' Wav2Vec2Model (the paper's; frozen unless --finetune);
`hf:X`  any wav2vec2 / HuBERT / WavLM checkpoint (hub id or folder) through AutoModel;
`ge2e`  the frozen pretrained GE2E speaker encoder of resemblyzer, 3 LSTM layers (ge2e.py; CPU-sized);
`lfcc`  LFCC features, the ASVspoof baseline front-end (lfcc.py; no weights);
`rawnetlite` RawNetLite's peak normalisation, 3 s cut and conv stack, trained (rawnetlite.py);
`sinc`  the sinc filterbank + residual encoder of the original AASIST, trained from scratch (sinc.py);
`sinc-l` the same at AASIST-L's width (24 channels instead of 64);
`rawgat-st` the sinc layer + the two residual encoders of RawGAT-ST (rawgat.py);
`tiny`  a small randomly initialised Wav2Vec2Model, trained from scratch (tests, benchmarks).
Weights resolve as: a local folder > the model store HARDSPOOF_MODELS/<name> > the hub when online.
Remote code is never trusted.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from manifests.errors import UsageError, first_line
from manifests.modelstore import offline, store_dir

XLSR_ID = "facebook/wav2vec2-xls-r-300m"
CPU_FRONTENDS = ("ge2e", "lfcc", "rawgat-st", "rawnetlite", "sinc", "sinc-l", "tiny")


def resolve_weights(source: str) -> str:
    """A folder holding `source`'s weights, or the hub id itself when online and nothing is local."""
    path = Path(source).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise UsageError(f"front-end folder {path} has no config.json; save it with `save_pretrained`")
        return str(path)
    name = source.rstrip("/").split("/")[-1]
    for cand in (store_dir() / source.replace("/", "--"), store_dir() / name):
        if (cand / "config.json").is_file():
            return str(cand)
    if offline() or "/" not in source:
        raise UsageError(
            f"front-end weights {source} are not available offline (looked in {store_dir() / name}); on an online "
            f"machine run `huggingface-cli download {source} --local-dir {store_dir() / name}` "
            f"(or set HARDSPOOF_MODELS), pass --frontend hf:/path/to/folder, or train on a CPU front-end "
            f"that needs no download: --frontend {'|'.join(CPU_FRONTENDS)}")
    return source


def tiny_config(hidden: int = 32, layers: int = 2):
    """A Wav2Vec2Config with the XLS-R layout (stable layer norm) at toy size; 320x downsampling."""
    from transformers import Wav2Vec2Config

    return Wav2Vec2Config(
        hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=2, intermediate_size=2 * hidden,
        conv_dim=(hidden,) * 4, conv_kernel=(10, 8, 4, 4), conv_stride=(5, 4, 4, 4),
        num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4, feat_extract_norm="layer",
        do_stable_layer_norm=True, apply_spec_augment=False, mask_time_prob=0.0, layerdrop=0.0, hidden_dropout=0.0,
        attention_dropout=0.0, activation_dropout=0.0, feat_proj_dropout=0.0, final_dropout=0.0)


class SSLFrontend(nn.Module):
    """Wraps a transformers speech encoder; forward returns (B, L, T', D) with L = layers + 1 (CNN output)."""

    def __init__(self, encoder: nn.Module, trainable: bool, normalize: bool, pretrained: bool = True):
        super().__init__()
        self.encoder, self.trainable, self.normalize, self.pretrained = encoder, trainable, normalize, pretrained
        self.encoder.requires_grad_(trainable)
        cfg = encoder.config
        self.num_layers, self.dim = cfg.num_hidden_layers + 1, cfg.hidden_size

    def train(self, mode: bool = True) -> "SSLFrontend":
        super().train(mode)
        if not self.trainable:
            self.encoder.eval()  # a frozen encoder never applies dropout / masking
        return self

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """wav: (B, T) float32 in [-1, 1] at 16 kHz -> (B, L, T', D), T' ~ T / 320."""
        if self.normalize:  # pretrained wav2vec2 models expect zero-mean, unit-variance input
            wav = (wav - wav.mean(-1, keepdim=True)) / (wav.std(-1, keepdim=True) + 1e-7)
        with torch.set_grad_enabled(self.trainable and torch.is_grad_enabled()):
            out = self.encoder(wav, output_hidden_states=True)
        # the last entry is the encoder output (after the final layer norm of stable-layer-norm models
        # such as XLS-R), as transformers 4.x returned it; 5.x hooks record it before that norm
        return torch.stack(out.hidden_states[:-1] + (out.last_hidden_state,), dim=1)


def build_frontend(spec: str, finetune: bool = False, tiny_hidden: int = 32, tiny_layers: int = 2) -> nn.Module:
    """`xlsr` | `hf:<id-or-folder>` (a bare folder path works too) | `ge2e` | `lfcc` | `rawgat-st` | `rawnetlite` |
    `sinc` | `sinc-l` | `tiny` -> a front-end."""
    if spec == "tiny":
        from transformers import Wav2Vec2Model

        return SSLFrontend(Wav2Vec2Model(tiny_config(tiny_hidden, tiny_layers)), trainable=True, normalize=False,
                           pretrained=False)
    if spec == "ge2e":
        from .ge2e import GE2EFrontend

        return GE2EFrontend()
    if spec == "lfcc":
        from .lfcc import LFCCFrontend

        return LFCCFrontend()
    if spec == "rawnetlite":
        from .rawnetlite import RawNetLiteFrontend

        return RawNetLiteFrontend()
    if spec == "rawgat-st":
        from .rawgat import RawGATFrontend

        return RawGATFrontend()
    if spec in ("sinc", "sinc-l"):
        from .sinc import SincFrontend

        return SincFrontend("aasist-l" if spec == "sinc-l" else "aasist")
    if spec == "xlsr":
        from transformers import Wav2Vec2Model

        path = resolve_weights(XLSR_ID)
        return SSLFrontend(Wav2Vec2Model.from_pretrained(path, trust_remote_code=False), finetune, normalize=True)
    if spec.startswith("hf:") or Path(spec).expanduser().is_dir():
        from transformers import AutoModel

        path = resolve_weights(spec[3:] if spec.startswith("hf:") else spec)
        try:
            model = AutoModel.from_pretrained(path, trust_remote_code=False)
        except (OSError, ValueError) as e:
            raise UsageError(f"cannot load front-end {spec}: {first_line(e)}") from None
        if not hasattr(model.config, "num_hidden_layers") or "feature_extractor" not in dict(model.named_children()):
            raise UsageError(f"front-end {spec} is a {type(model).__name__}; expected a wav2vec2/HuBERT/WavLM speech encoder")
        return SSLFrontend(model, finetune, normalize=True)
    raise UsageError(f"unknown front-end {spec!r}; allowed: xlsr, hf:<hub-id-or-folder>, {', '.join(CPU_FRONTENDS)}")

"""Run configuration: three frozen dataclasses (data, model, training); the CLI options are their fields.

`RunConfig.to_dict/from_dict` round-trip through the checkpoint's config.json; unknown keys are
refused with the list of allowed ones, so a config from another version fails loudly. Every value is
checked for type and range (`RULES`) whichever way it arrives (YAML, CLI option, checkpoint): a bad
one is a one-line UsageError naming the field, what it got and what is allowed.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from manifests.errors import UsageError, first_line


@dataclass(frozen=True)
class DataConfig:
    sample_rate: int = 16000              # Hz; every clip is resampled to this
    crop: int = 64600                     # samples per training crop (~4 s); short clips are repeat-padded
    pad: str = "repeat"                   # scoring: repeat a clip shorter than `crop` up to it | none: score it as is
                                          # (for models of any input length, e.g. the published LFCC-LCNN-LSTM)
    batch_size: int = 16                  # clips per batch per process (half bona fide, half spoof)
    recon_share: float | None = None      # share of a batch's spoof slots for its originals' own reconstructions;
                                          # None: 0.5 when there are other spoofs (corpus attacks), else 1.0
    bonafide_methods: tuple[str, ...] = ()  # reconstruction methods relabelled bona fide (default: all spoof)
    dev_fraction: float = 0.2             # share of speakers held out for dev when the manifest has no split
    holdout_attacks: tuple[str, ...] = () # attacks held out of training: their spoofs and the reconstructions of
                                          # those are dropped from the train and dev splits (evaluate on them)
    augment: bool = True                  # additive noise + RIR on training crops
    noise_dir: str | None = None          # folder of noise/music audio; synthetic noise when None
    rir_dir: str | None = None            # folder of room impulse responses; synthetic RIRs when None
    snr_db: tuple[float, float] = (0.0, 15.0)  # additive-noise SNR range, dB
    aug_prob: float = 0.5                 # probability of each augmentation per clip
    rawboost: bool = False                # RawBoost (LnL + ISD + SSI) on training crops
    num_workers: int = 0                  # DataLoader worker processes
    random_crop: bool = True              # a random window of a long training clip each epoch | its first `crop`
                                          # samples, as published countermeasures are scored (fixed inputs)


@dataclass(frozen=True)
class ModelConfig:
    frontend: str = "xlsr"                # xlsr | hf:<hub-id-or-folder> | ge2e | lfcc | rawgat-st | rawnetlite | sinc | sinc-l | tiny
    aggregation: str = "attn"             # attn | weighted | last
    backend: str = "aasist"               # aasist | linear | lcnn-lstm (LFCC-LCNN-LSTM) | rawnetlite (its BiGRU)
                                          # | rawgat-st (RawGAT-ST's graphs, on --frontend rawgat-st)
    aasist_size: str = "auto"             # full (the paper's SSL-AASIST) | small (CPU) | auto: full for xlsr/hf:, else small
                                          # original | original-l: the raw-waveform AASIST / AASIST-L graph (sinc maps)
    finetune: bool | None = None          # train the front-end too; unset: a pretrained SSL front-end stays frozen
                                          # (tiny is always trained), a model started with --init trains whole
    tiny_hidden: int = 32                 # tiny front-end: hidden size
    tiny_layers: int = 2                  # tiny front-end: transformer layers
    proj_dim: int = 128                   # back-end input projection of the SSL features
    embed_dim: int = 64                   # linear back-end embedding size
    gat_dim: int = 32                     # AASIST graph node size
    dropout: float = 0.1                  # back-end dropout
    contrastive_head: str = "none"        # none: contrastive terms on the embedding the head reads | proj: on an MLP
                                          # projection of it (the head reads the layer before)
    score_head: str = "linear"            # linear: a logit | oc: cosine to a learned bona fide centre (set by loss oc)


@dataclass(frozen=True)
class TrainConfig:
    loss: str = "racl"                    # racl | ce | oc (one-class OC-softmax, scores = cosine to a bona fide centre)
    alpha: float = 0.6                    # weight of L_std (all-pairs contrastive)
    beta: float = 0.1                     # weight of L_enh (bona fide vs its own reconstruction)
    gamma: float = 0.3                    # weight of L_reg (within-class variance)
    margin: float = 1.0                   # contrastive margin on L2-normalised embeddings (distance in [0, 2])
    lr: float = 5e-4                      # Adam learning rate
    lr_halve_every: int = 10              # epochs between halvings of the learning rate
    weight_decay: float = 1e-4            # Adam weight decay
    epochs: int = 100                     # maximum epochs
    patience: int = 10                    # early stopping: epochs without a better selected epoch
    average_last: int = 5                 # final model = mean of the selected epoch and the (n-1) before it
    select_on: str = "loss"               # epoch selection and early stopping: lowest validation loss | eer
    max_steps: int | None = None          # stop each epoch after this many steps (smoke tests)
    seed: int = 688                       # global RNG seed
    init: str | None = None               # start from pretrained:NAME (a published countermeasure) or a checkpoint
    train_last: int | None = None         # train only the last N blocks of the model (the head counts as one)
    pretrained_lr_scale: float = 1.0      # learning rate of the weights that came from `init`: lr * this
    wise_alpha: float = 1.0               # final weights = start + alpha * (fine-tuned - start) (WiSE-FT); 1 = off
    cache_frontend: bool = False          # memoise a frozen front-end's outputs per input (fixed crops, no augment)
    frontend_cache_dir: str | None = None # also keep them on disk here, shared by runs with the same frozen encoder
    warmup_epochs: int = 0                # racl: the first N epochs train on CE alone (alpha = beta = gamma = 0)
    std_pull: str = "all"                 # racl L_std pulls together all same-label pairs | bonafide: only bona fide ones
    oc_real: float = 0.9                  # loss oc: bona fide cosine to the centre is pushed above this
    oc_fake: float = 0.2                  # loss oc: spoof cosine to the centre is pushed below this
    oc_scale: float = 20.0                # loss oc: scale of the cosine margins inside the softplus
    diagnostics: bool = False             # per-epoch OUT/diagnostics.csv (+ .png): loss terms, embedding distances,
                                          # dev logits per attack and kind (held-out attacks' dev clips included)


@dataclass(frozen=True)
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunConfig":
        parts = {name: _build(sec, d.get(name) or {}, name) for name, sec in _SECTIONS.items()}
        unknown = set(d) - set(parts)
        if unknown:
            raise UsageError(f"unknown config section(s) {sorted(unknown)}; allowed: {sorted(parts)}")
        return cls(**parts)

    def replace(self, section: str, **changes: Any) -> "RunConfig":
        """A copy with `changes` applied to one section ('data', 'model' or 'train')."""
        return dataclasses.replace(self, **{section: _build(type(getattr(self, section)), changes, section,
                                                            base=getattr(self, section))})


_SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}
SEED_MAX = 2**32 - 1  # numpy's seed range

# field -> (type, low, high) for numbers (inclusive; None = open), or a tuple of allowed strings.
# Fields not listed are free strings / string tuples / bools, type-checked only.
RULES: dict[str, Any] = {
    "sample_rate": (int, 4000, 384000), "crop": (int, 400, 16000 * 600), "batch_size": (int, 2, 65536),
    "dev_fraction": (float, 0.0, 1.0), "recon_share": (float, 0.0, 1.0), "aug_prob": (float, 0.0, 1.0),
    "num_workers": (int, 0, 256), "tiny_hidden": (int, 2, 4096), "tiny_layers": (int, 1, 48),
    "proj_dim": (int, 3, 65536), "embed_dim": (int, 1, 65536), "gat_dim": (int, 1, 65536),
    "dropout": (float, 0.0, 0.99), "alpha": (float, 0.0, 1.0), "beta": (float, 0.0, 1.0), "gamma": (float, 0.0, 100.0),
    "margin": (float, 1e-6, 2.0), "lr": (float, 1e-12, 10.0), "lr_halve_every": (int, 1, 100000),
    "weight_decay": (float, 0.0, 10.0), "epochs": (int, 1, 100000), "patience": (int, 0, 100000),
    "average_last": (int, 1, 1000), "max_steps": (int, 1, 10**9), "seed": (int, 0, SEED_MAX),
    "train_last": (int, 1, 100000), "pretrained_lr_scale": (float, 0.0, 100.0),
    "wise_alpha": (float, 0.0, 1.0),
    "warmup_epochs": (int, 0, 100000), "oc_real": (float, -1.0, 1.0), "oc_fake": (float, -1.0, 1.0),
    "oc_scale": (float, 1e-3, 1000.0), "std_pull": ("all", "bonafide"), "contrastive_head": ("none", "proj"),
    "score_head": ("linear", "oc"),
    "pad": ("repeat", "none"), "aggregation": ("attn", "weighted", "last"), "backend": ("aasist", "linear", "lcnn-lstm", "rawnetlite", "rawgat-st"),
    "aasist_size": ("auto", "small", "full", "original", "original-l"), "loss": ("racl", "ce", "oc"), "select_on": ("loss", "eer"),
}


def _check_value(name: str, value: Any, kind: type, section: str) -> None:
    where = f"{section}.{name}"
    if name in RULES and isinstance(RULES[name], tuple) and isinstance(RULES[name][0], str):
        if value not in RULES[name]:
            raise UsageError(f"{where}: {value!r} is not one of {', '.join(RULES[name])}")
        return
    if name in RULES:
        typ, lo, hi = RULES[name]
        ok = isinstance(value, int) and not isinstance(value, bool) if typ is int else \
            isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if not ok:
            raise UsageError(f"{where}: expected {'an integer' if typ is int else 'a number'}, got {value!r}")
        if not lo <= value <= hi:
            raise UsageError(f"{where}: {value!r} is outside [{lo:g}, {hi:g}]")
        return
    if kind is bool and not isinstance(value, bool):
        raise UsageError(f"{where}: expected true or false, got {value!r}")
    if kind is str and not isinstance(value, str):
        raise UsageError(f"{where}: expected a string, got {value!r}")
    if kind is tuple and not all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in value):
        raise UsageError(f"{where}: expected a list, got {value!r}")


def _kind(annotation: str) -> type | None:
    for name, typ in (("tuple", tuple), ("bool", bool), ("str", str)):
        if annotation.startswith(name):
            return typ
    return None


def _validate(obj: Any, section: str) -> Any:
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if value is None and "None" in str(f.type):
            continue
        if isinstance(value, tuple) and f.name == "snr_db":
            if len(value) != 2 or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in value) \
                    or value[0] > value[1]:
                raise UsageError(f"{section}.snr_db: expected [low, high] in dB, got {list(value)!r}")
            continue
        _check_value(f.name, value, _kind(str(f.type)), section)
    if section == "train" and obj.alpha + obj.beta > 1.0:
        raise UsageError(f"train: alpha + beta = {obj.alpha + obj.beta:g} > 1 leaves L_cls a negative weight")
    if section == "train" and obj.oc_fake >= obj.oc_real:
        raise UsageError(f"train: oc_fake {obj.oc_fake:g} must be below oc_real {obj.oc_real:g}")
    return obj


def _build(cls: type, values: dict[str, Any], section: str, base: Any = None) -> Any:
    if not isinstance(values, dict):
        raise UsageError(f"config section {section}: expected a mapping, got {values!r}")
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = [k for k in values if k not in names]
    if unknown:
        raise UsageError(f"unknown {section} option(s) {unknown}; allowed: {', '.join(names)}")
    clean = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    return _validate(dataclasses.replace(base, **clean) if base is not None else cls(**clean), section)


def load_yaml(path: str) -> RunConfig:
    """A RunConfig from a YAML file with sections data/model/train (`--config`)."""
    import yaml

    try:
        with open(path, encoding="utf-8") as fh:
            d = yaml.safe_load(fh) or {}
    except yaml.YAMLError as e:
        raise UsageError(f"--config {path}: not valid YAML ({first_line(e)})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"--config {path}: cannot read it ({first_line(e)})") from None
    if not isinstance(d, dict):
        raise UsageError(f"--config {path}: expected a mapping with sections data/model/train")
    try:
        return RunConfig.from_dict(d)
    except UsageError as e:
        raise UsageError(f"--config {path}: {first_line(e)}") from None

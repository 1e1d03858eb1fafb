"""`detector experiment` config: YAML -> frozen dataclasses, every unknown or missing key named in one line.

Relative paths in the YAML resolve against the YAML file's folder, so a config and its data can move together.
Path values may use variables, `${NAME}`: declared with a default under `vars:`, overridden by an environment
variable of the same name, and that by `detector experiment --set NAME=VALUE` (a relative path given on the
command line or in the environment resolves against the current directory; a default, against the YAML's folder).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from manifests.errors import UsageError, first_line

from ..config import SEED_MAX, RunConfig

SECTIONS = ("data", "model", "train")


@dataclass(frozen=True)
class Source:
    """Audio to train or evaluate on: an existing manifest, or a corpus imported with `manifests import`."""
    name: str
    manifest: str | None = None           # Parquet manifest (file or folder of parts)
    corpus: str | None = None             # folder / CSV / TSV / Parquet / ASVspoof protocol, imported to OUT/manifests
    audio_dir: str | None = None          # audio folder of an ASVspoof protocol corpus
    split: str | None = None              # evaluate only this split (train|dev|eval); reconstructions follow their source


@dataclass(frozen=True)
class Recon:
    """One reconstruction paradigm/model: an existing manifest, or a `reconstruct run` to do (resumable)."""
    name: str
    manifest: str | None = None           # existing reconstruct output (OUT/manifest of an earlier run)
    corpus: str | None = None             # run to do: the corpus to reconstruct
    audio_dir: str | None = None          # run to do: audio folder of an ASVspoof protocol corpus
    select: tuple[tuple[str, tuple[str, ...]], ...] = ()  # run to do: keep corpus rows whose column is in the values
    method: str | None = None             # paradigm: codec | vocoder | diffusion
    model: str | None = None              # back-end name (`reconstruct list`)
    params: tuple[tuple[str, Any], ...] = ()  # back-end parameters (`--param k=v`)
    grid: tuple[tuple[str, tuple[Any, ...]], ...] = ()  # parameter grid (`--grid k=v1,v2`): a variant per point
    checkpoint: str | None = None         # weights for the model (`--checkpoint`)
    out: str | None = None                # output folder [OUT/recon/<name>]
    seed: int = 0                         # reconstruct run seed
    limit: int | None = None              # only the first N corpus clips (after `select`)

    @property
    def todo(self) -> bool:
        return self.manifest is None


@dataclass(frozen=True)
class Mining:
    """Mining rounds: round 1 trains on the training data (plus, with round1 "random", a random selection of
    the candidates), scores every candidate, `manifests mine` keeps a share; round 2 (the variant's run)
    trains on the training data plus the kept ones. select "random" is the control: the same count drawn
    at random (no round 1)."""
    candidates: str                       # a name from `reconstructions` (e.g. a `grid` run)
    keep: float = 0.3                     # share of each group kept
    per: str = "source"                   # group: source | model
    select: str = "hard"                  # hard | random
    round1: str = "none"                  # none | random: what round 1 trains on besides the training data


@dataclass(frozen=True)
class Variant:
    """One detector: `detector train` options plus the reconstruction runs added to the training data."""
    name: str
    reconstructions: tuple[str, ...]      # names from `reconstructions`
    run: RunConfig                        # defaults < the variant's data/model/train sections (seed set per run)
    seeds: tuple[int, ...] | None = None  # this variant's seeds, when not the study's (e.g. fewer for a slow one)
    mine: Mining | None = None            # mining rounds (see Mining)
    zero_shot: str | None = None          # evaluate this checkpoint (e.g. pretrained:aasist) as it is: no training

    @property
    def slug(self) -> str:
        return re.sub(r"[^A-Za-z0-9._-]+", "_", self.name).strip("_") or "variant"


@dataclass(frozen=True)
class Experiment:
    name: str                             # title of the results table
    train: tuple[Source, ...]             # training corpora/manifests (their split column gives train/dev)
    reconstructions: tuple[Recon, ...]
    variants: tuple[Variant, ...]         # table rows, in config order
    seeds: tuple[int, ...]                # every variant is trained once per seed
    evals: tuple[Source, ...]             # table columns, in config order
    out: str | None = None                # output folder when --out is not given
    eval_batch_size: int = 16             # clips per scoring batch
    threads: int | None = None            # torch CPU threads per run (1 on a shared CPU: OpenMP spin-waits
                                          # under contention made 2 threads ~15x slower); None = torch's default
    folds: tuple[tuple[str, ...], ...] = ((),)  # attacks held out of training, one tuple per fold; ((),) = none

    @property
    def held_out(self) -> bool:
        return self.folds != ((),)


def fold_name(attacks: tuple[str, ...]) -> str:
    """Column/folder name of a fold: its held-out attacks joined with '+', 'all' when none."""
    return "+".join(attacks) or "all"


TOP = {"name", "train", "reconstructions", "defaults", "variants", "seeds", "eval", "out", "eval_batch_size", "threads",
       "holdout", "vars"}
VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class Vars:
    """`${NAME}` in path values: --set NAME=VALUE > environment variable NAME > the YAML's `vars:` default."""

    def __init__(self, defaults: dict, overrides: dict[str, str], base: Path, where: str):
        self.defaults, self.overrides, self.base = defaults, overrides, base
        for k, v in defaults.items():
            if not isinstance(v, (str, int, float)) or not VAR.fullmatch("${" + str(k) + "}"):
                raise UsageError(f"{where}.vars.{k}: expected NAME: value (letters, digits, _), got {v!r}")
        unknown = sorted(set(overrides) - set(defaults))
        if unknown:
            raise UsageError(f"--set {unknown[0]}: no such variable in {where}; declared: "
                             f"{', '.join(sorted(defaults)) or 'none'}")

    def expand(self, value: str, where: str) -> tuple[str, Path]:
        """(value with variables substituted, the folder a relative result resolves against)."""
        base = self.base

        def sub(m: re.Match) -> str:
            nonlocal base
            name = m.group(1)
            if name in self.overrides or name in os.environ:
                base = Path.cwd()
                return self.overrides.get(name, os.environ.get(name, ""))
            if name not in self.defaults:
                raise UsageError(f"{where}: unknown variable ${{{name}}}; declare it under `vars:`")
            return str(self.defaults[name])

        return VAR.sub(sub, value), base


def _keys(d: Any, where: str, allowed: set[str], required: set[str] = frozenset()) -> dict:
    if not isinstance(d, dict):
        raise UsageError(f"{where}: expected a mapping, got {type(d).__name__}")
    unknown = sorted(set(map(str, d)) - allowed)
    if unknown:
        raise UsageError(f"{where}: unknown key {unknown[0]!r}; allowed: {', '.join(sorted(allowed))}")
    missing = sorted(required - set(d))
    if missing:
        raise UsageError(f"{where}: missing key {missing[0]!r}")
    return d


def _path(value: Any, ctx: Vars, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise UsageError(f"{where}: expected a path string, got {value!r}")
    value, base = ctx.expand(value, where)
    if value == "demo" or "://" in value:
        return value
    p = Path(value).expanduser()
    return str(p if p.is_absolute() else (base / p).resolve())


def _source(name: str, d: Any, ctx: Vars, where: str) -> Source:
    d = _keys(d, where, {"manifest", "corpus", "audio_dir", "split"})
    if (d.get("manifest") is None) == (d.get("corpus") is None):
        raise UsageError(f"{where}: give exactly one of 'manifest' or 'corpus'")
    if d.get("split") not in (None, "train", "dev", "eval"):
        raise UsageError(f"{where}.split: {d['split']!r} is not one of train, dev, eval")
    return Source(name, _path(d.get("manifest"), ctx, where + ".manifest"), _path(d.get("corpus"), ctx, where + ".corpus"),
                  _path(d.get("audio_dir"), ctx, where + ".audio_dir"), d.get("split"))


RECON_KEYS = {"manifest", "corpus", "audio_dir", "select", "method", "model", "params", "grid", "checkpoint", "out", "seed",
              "limit"}


def _recon(name: str, d: Any, ctx: Vars, where: str) -> Recon:
    d = _keys(d, where, RECON_KEYS)
    if (d.get("manifest") is None) == (d.get("corpus") is None):
        raise UsageError(f"{where}: give 'manifest' (existing reconstructions) or 'corpus' + 'model' (a run to do)")
    if d.get("corpus") is not None and not (d.get("model") or d.get("method")):
        raise UsageError(f"{where}: a run to do needs 'model' (see `reconstruct list`) or 'method'")
    select = _keys(d.get("select") or {}, where + ".select", {"split", "label", "attack", "speaker", "language"})
    params = _keys(d.get("params") or {}, where + ".params", set(map(str, d.get("params") or {})))
    grid = _keys(d.get("grid") or {}, where + ".grid", set(map(str, d.get("grid") or {})))
    for k, values in grid.items():
        if not isinstance(values, list) or not values or any(isinstance(v, (list, dict)) for v in values):
            raise UsageError(f"{where}.grid.{k}: expected a list of values, got {values!r}")
    for key, lo, hi in (("seed", 0, SEED_MAX), ("limit", 1, 10**12)):
        if d.get(key) is not None and not _is_int(d[key], lo, hi):
            raise UsageError(f"{where}.{key}: expected an integer in [{lo}, {hi}], got {d[key]!r}")
    return Recon(name, _path(d.get("manifest"), ctx, where + ".manifest"), _path(d.get("corpus"), ctx, where + ".corpus"),
                 _path(d.get("audio_dir"), ctx, where + ".audio_dir"),
                 tuple((k, tuple(map(str, v if isinstance(v, list) else [v]))) for k, v in select.items()),
                 d.get("method"), d.get("model"), tuple(params.items()),
                 tuple((k, tuple(v)) for k, v in grid.items()), _path(d.get("checkpoint"), ctx, where + ".checkpoint"),
                 _path(d.get("out"), ctx, where + ".out"), d.get("seed") or 0, d.get("limit"))


def _merge(defaults: dict, variant: dict) -> dict:
    return {s: {**(defaults.get(s) or {}), **(variant.get(s) or {})} for s in SECTIONS}


def _seeds(seeds: Any, where: str) -> tuple[int, ...]:
    seeds = [seeds] if isinstance(seeds, int) else seeds
    if not isinstance(seeds, list) or not seeds or not all(_is_int(s, 0, SEED_MAX) for s in seeds):
        raise UsageError(f"{where}: expected an integer or a list of integers in [0, {SEED_MAX}], got {seeds!r}")
    return tuple(dict.fromkeys(seeds))


def _variant(name: str, d: Any, defaults: dict, recons: set[str], where: str) -> Variant:
    d = _keys(d if d is not None else {}, where, {"reconstructions", "seeds", "mine", "zero_shot", *SECTIONS})
    zero_shot = d.get("zero_shot")
    if zero_shot is not None and (not isinstance(zero_shot, str) or not zero_shot.startswith("pretrained:")):
        raise UsageError(f"{where}.zero_shot: expected pretrained:NAME (`detector models list`), got {zero_shot!r}")
    if zero_shot is not None and (d.get("reconstructions") or d.get("mine") is not None):
        raise UsageError(f"{where}: a zero_shot variant trains nothing, so it takes no reconstructions or mining")
    used = d.get("reconstructions") or []
    if not isinstance(used, list):
        raise UsageError(f"{where}.reconstructions: expected a list of names, got {used!r}")
    unknown = [r for r in used if r not in recons]
    if unknown:
        raise UsageError(f"{where}.reconstructions: unknown run {unknown[0]!r}; defined: {', '.join(sorted(recons)) or 'none'}")
    try:
        run = RunConfig.from_dict(_merge(defaults, d))
    except (UsageError, TypeError) as e:
        raise UsageError(f"{where}: {first_line(e)}") from None
    return Variant(name, tuple(used), run, _seeds(d["seeds"], f"{where}.seeds") if "seeds" in d else None,
                   _mining(d["mine"], recons, f"{where}.mine") if d.get("mine") is not None else None, zero_shot)


def _mining(d: Any, recons: set[str], where: str) -> Mining:
    d = _keys(d, where, {"candidates", "keep", "per", "select", "round1"}, {"candidates"})
    if d["candidates"] not in recons:
        raise UsageError(f"{where}.candidates: unknown run {d['candidates']!r}; defined: {', '.join(sorted(recons)) or 'none'}")
    keep = d.get("keep", 0.3)
    if isinstance(keep, bool) or not isinstance(keep, (int, float)) or not 0 < keep <= 1:
        raise UsageError(f"{where}.keep: expected a share in (0, 1], got {keep!r}")
    for key, allowed in (("per", ("source", "model")), ("select", ("hard", "random")), ("round1", ("none", "random"))):
        if key in d and d[key] not in allowed:
            raise UsageError(f"{where}.{key}: {d[key]!r} is not one of {', '.join(allowed)}")
    return Mining(d["candidates"], float(keep), d.get("per", "source"), d.get("select", "hard"), d.get("round1", "none"))


def _is_int(value: Any, lo: int, hi: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi


def _folds(d: Any, where: str) -> tuple[tuple[str, ...], ...]:
    """`holdout: {attacks: [a, b]}` (one training without a and b) or `holdout: {each: [a, b, c]}`
    (leave-one-attack-out: one training per listed attack, without it)."""
    if d is None:
        return ((),)
    d = _keys(d, where, {"attacks", "each"})
    if len(d) != 1:
        raise UsageError(f"{where}: give exactly one of 'attacks' (one fold) or 'each' (a fold per attack)")
    (key, attacks), = d.items()
    if not isinstance(attacks, list) or not attacks or not all(isinstance(a, str) and a for a in attacks):
        raise UsageError(f"{where}.{key}: expected a non-empty list of attack names, got {attacks!r}")
    return (tuple(attacks),) if key == "attacks" else tuple((a,) for a in dict.fromkeys(attacks))


def parse(d: Any, base: Path, where: str = "config", overrides: dict[str, str] | None = None) -> Experiment:
    """Validate a loaded YAML mapping into an Experiment (paths resolved against `base`; `overrides` are
    --set NAME=VALUE variables)."""
    d = _keys(d, where, TOP, {"train", "variants", "eval"})
    ctx = Vars(_keys(d.get("vars") or {}, f"{where}.vars", set(map(str, d.get("vars") or {}))),
               overrides or {}, base, where)
    defaults = _keys(d.get("defaults") or {}, f"{where}.defaults", set(SECTIONS))
    recons = _keys(d.get("reconstructions") or {}, f"{where}.reconstructions", set(map(str, d.get("reconstructions") or {})))
    recon = tuple(_recon(str(n), v, ctx, f"{where}.reconstructions.{n}") for n, v in recons.items())
    variants = _keys(d["variants"], f"{where}.variants", set(map(str, d["variants"] or {})))
    if not variants:
        raise UsageError(f"{where}.variants: define at least one variant")
    names = {r.name for r in recon}
    var = tuple(_variant(str(n), v, defaults, names, f"{where}.variants.{n}") for n, v in variants.items())
    slugs = [v.slug for v in var]
    if len(set(slugs)) != len(slugs):
        raise UsageError(f"{where}.variants: names {', '.join(v.name for v in var)} collide as folder names")
    seeds = _seeds(d.get("seeds", [688]), f"{where}.seeds")
    threads = d.get("threads")
    if threads is not None and not _is_int(threads, 1, 1024):
        raise UsageError(f"{where}.threads: expected a positive integer, got {threads!r}")
    eval_batch = d.get("eval_batch_size", 16)
    if not _is_int(eval_batch, 1, 65536):
        raise UsageError(f"{where}.eval_batch_size: expected a positive integer, got {eval_batch!r}")
    evals = _keys(d["eval"], f"{where}.eval", set(map(str, d["eval"] or {})))
    if not evals:
        raise UsageError(f"{where}.eval: name at least one evaluation set")
    train = d["train"] if isinstance(d["train"], list) else [d["train"]]
    if not train:
        raise UsageError(f"{where}.train: give a corpus/manifest mapping or a list of them")
    train = tuple(_source("train" if len(train) == 1 else f"train-{i}", t, ctx, f"{where}.train" + (f"[{i}]" if len(train) > 1 else ""))
                  for i, t in enumerate(train))
    return Experiment(str(d.get("name") or "experiment"), train, recon,
                      var, seeds,
                      tuple(_source(str(n), v, ctx, f"{where}.eval.{n}") for n, v in evals.items()),
                      _path(d.get("out"), ctx, f"{where}.out"), eval_batch, threads,
                      _folds(d.get("holdout"), f"{where}.holdout"))


def load(path: str | Path, overrides: dict[str, str] | None = None) -> Experiment:
    """An Experiment from a YAML file (yaml.safe_load); `overrides`: --set NAME=VALUE variables."""
    import yaml

    path = Path(path)
    try:
        with open(path, encoding="utf-8") as fh:
            d = yaml.safe_load(fh)
    except OSError as e:
        raise UsageError(f"--config {path}: {e.strerror or e}") from None
    except yaml.YAMLError as e:
        raise UsageError(f"--config {path}: not valid YAML ({first_line(e)})") from None
    return parse(d, path.resolve().parent, path.name, overrides)

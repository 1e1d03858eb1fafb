"""The plan of a run: which back-ends (model specs) over which clips, and what is already done.

Everything here is columnar (pyarrow): the corpus listing, the tasks of each model and the set of finished
clips are Arrow tables, joined with Arrow's hash joins, so the driver holds no Python object per clip.

A variant is identified by its canonical parameters (parsed, typed, defaults filled: `bitrate_kbps=12` and
`12.0` are one variant), the sha256 of its weights and the run seed; a finished clip also by its source's
file identity (see `resume`).
"""
from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import posixpath
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from manifests import storage
from manifests.errors import UsageError
from manifests.schema import METHODS

from . import weights
from .backends import BACKENDS, get
from .backends.base import parse_params

# Preferred back-end per paradigm: the first whose weights are on this machine is the default.
PREFERENCE = {
    "codec": ("encodec-24khz", "dac-16khz", "opus"),
    "vocoder": ("hifigan-libritts-16k", "hifigan-ljspeech-22k", "griffinlim"),
    "diffusion": ("semanticodec", "audioldm2-sdedit", "diffwave-ljspeech", "mel-diffusion"),
}


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """One back-end with its parameters: what one actor loads."""

    name: str
    method: str
    params_json: str = "{}"          # every parameter (typed, defaults filled), canonical JSON
    checkpoint: str | None = None
    variant_params: str = "{}"       # the ones that differ from the defaults, canonical JSON (the name suffix)

    @property
    def params(self) -> dict:
        return json.loads(self.params_json)

    @property
    def variant(self) -> str:
        """Folder and utt_id suffix: the name, plus the parameters that differ from the defaults."""
        p = json.loads(self.variant_params)
        return self.name if not p else self.name + "@" + ",".join(f"{k}={_fmt(v)}" for k, v in sorted(p.items()))


def _fmt(v) -> str:
    """A parameter value as it appears in a variant name: 12.0 and 12 alike."""
    if isinstance(v, float) and math.isfinite(v) and v.is_integer():
        return str(int(v))
    return json.dumps(v) if not isinstance(v, str) else v


def canonical(name: str, given: dict) -> tuple[str, str]:
    """(all parameters, the non-default ones) of back-end `name` as canonical JSON, from user values."""
    cls = get(name).Params
    params = dataclasses.asdict(parse_params(cls, given, name))
    defaults = dataclasses.asdict(cls())
    differ = {k: v for k, v in params.items() if v != defaults[k]}
    return json.dumps(params, sort_keys=True), json.dumps(differ, sort_keys=True)


def weights_sha256(spec: ModelSpec) -> str | None:
    """sha256 of the weights `spec` would load (as the back-end records it), without loading them; None
    for a weight-free back-end or weights that are not on this machine yet. A store folder's pull record
    is trusted; other weights are hashed."""
    cls = get(spec.name)
    if cls.weights is None and cls.bundled is None:
        return None
    path = weights.local_path(spec.name, spec.checkpoint)
    if path is None and cls.bundled is not None and storage.kind(str(cls.bundled)) == storage.DIR:
        path = cls.bundled
    if path is None:
        return None
    try:
        return cls.weights_sha256(Path(path), parse_params(cls.Params, dict(spec.params), cls.name))
    except (OSError, UsageError):
        return None  # weights the back-end cannot read: its own load reports that, in one line


def default_model(method: str) -> tuple[str, str]:
    """(name, one-line notice) of the preferred back-end of `method` available offline."""
    names = [n for n in PREFERENCE[method] if n in BACKENDS]
    for name in names:
        where = get(name).weights_location()
        if where is not None:
            skipped = names[: names.index(name)]
            why = f" (no local weights for {', '.join(skipped)})" if skipped else ""
            return name, f"{method}: using {name} [{where}]{why}"
    if not weights.offline() and names:
        return names[0], f"{method}: using {names[0]} (weights will be downloaded)"
    raise UsageError(f"no {method} back-end has weights on this machine; stage one with `reconstruct models pull NAME`")


def resolve_models(methods: tuple[str, ...], models: tuple[str, ...], params: dict,
                   checkpoint: str | None, grid: dict | None = None) -> tuple[list[ModelSpec], list[str]]:
    """Model specs for the requested paradigms/models, plus notices about defaults chosen. `grid` maps a
    parameter to values: each model gets one variant per combination of the grid parameters it has
    (variants with equal canonical parameters are one)."""
    grid = grid or {}
    bad = [m for m in methods if m not in METHODS]
    if bad:
        raise UsageError(f"unknown method {bad[0]!r}; choose from {', '.join(METHODS)}")
    if not methods and not models:
        raise UsageError("give --method (codec, vocoder, diffusion) and/or --model NAME")
    names, notices = [], []
    for name in models:
        cls = get(name)
        if methods and cls.method not in methods:
            raise UsageError(f"model {name} is a {cls.method} back-end, not {'/'.join(methods)}")
        names.append(name)
    for method in methods:
        if not any(get(n).method == method for n in names):
            name, notice = default_model(method)
            names.append(name)
            notices.append(notice)
    names = list(dict.fromkeys(names))
    if checkpoint and len(names) != 1:
        raise UsageError(f"--checkpoint applies to one model, but {len(names)} are selected: {', '.join(names)}")
    if checkpoint and get(names[0]).weights is None and get(names[0]).bundled is None:
        raise UsageError(f"--checkpoint {checkpoint}: {names[0]} is weight-free and takes no weights; drop --checkpoint")
    if checkpoint and not storage.is_uri(checkpoint) and not Path(checkpoint).expanduser().exists():
        raise UsageError(f"--checkpoint {checkpoint} does not exist")
    fields = {n: {f.name for f in dataclasses.fields(get(n).Params)} for n in names}
    unused = [k for k in [*params, *grid] if not any(k in f for f in fields.values())]
    if unused:
        raise UsageError(f"no selected model has parameter {unused[0]!r} (models: {', '.join(names)})")
    both = [k for k in grid if k in params]
    if both:
        raise UsageError(f"{both[0]!r} is given both as --param and as --grid; keep one")
    specs = []
    for n in names:
        keys = [k for k in grid if k in fields[n]]
        for combo in itertools.product(*(grid[k] for k in keys)):
            given = {**{k: v for k, v in params.items() if k in fields[n]}, **dict(zip(keys, combo))}
            full, differ = canonical(n, given)
            spec = ModelSpec(n, get(n).method, full, checkpoint, differ)
            if all(s.variant != spec.variant for s in specs):
                specs.append(spec)
    return specs, notices


def clip_seed(run_seed: int, source_id: str, variant: str) -> int:
    """A stable per-clip seed in [0, 2**63)."""
    digest = hashlib.sha256(f"{run_seed}:{source_id}:{variant}".encode()).digest()
    return int.from_bytes(digest[:8], "big") & (2**63 - 1)


def clip_seeds(run_seed: int, source_ids: pa.Array, variant: str) -> pa.Array:
    """`clip_seed` of every source id (int64)."""
    return pa.array([clip_seed(run_seed, s, variant) for s in source_ids.to_pylist()], pa.int64())


def reconstruction_attack(source_attack: str | None, variant: str) -> str:
    """Attack id of a reconstruction: the back-end, after the source's attack for corpus spoofs."""
    return variant if source_attack in (None, "-") else f"{source_attack}+{variant}"


NAME_MAX = 255  # bytes of one file name on the usual file systems (ext4, xfs, btrfs, tmpfs, APFS)


def short_name(name: str, limit: int = NAME_MAX) -> str:
    """A file name of at most `limit` UTF-8 bytes: `name` itself when it fits, else its stem cut (at a character
    boundary) + '-' + 8 hex digits of the whole name's sha256 + its suffix, so that names sharing a long start
    stay apart and a rerun finds the same name."""
    raw = name.encode("utf-8", "surrogateescape")
    if len(raw) <= limit:
        return name
    stem, dot, suffix = name.rpartition(".")
    tail = f"-{hashlib.sha256(raw).hexdigest()[:8]}{dot}{suffix}"
    room = limit - len(tail.encode("utf-8", "surrogateescape"))
    return stem.encode("utf-8", "surrogateescape")[:room].decode("utf-8", "ignore") + tail


def output_paths(paths: pa.Array, root: str, out: str, variant: str) -> pa.Array:
    """out/audio/VARIANT/<path relative to root, suffix .flac> for every source path (columnar). A file name
    the suffix makes longer than NAME_MAX bytes (a 252-255 byte `.wav` name) is shortened by `short_name`."""
    prefix = root.rstrip("/") + "/"  # root is the deepest folder holding every path
    rel = pc.replace_substring_regex(pc.utf8_slice_codeunits(paths, len(prefix)), r"\.[^./]*$", ".flac")
    long = pc.greater(pc.binary_length(pc.replace_substring_regex(rel, r"^.*/", "")), NAME_MAX)
    if pc.any(long).as_py():  # rare: only those few names go through Python
        if isinstance(rel, pa.ChunkedArray):
            rel, long = rel.combine_chunks(), long.combine_chunks()
        fixed = [posixpath.join(posixpath.dirname(r), short_name(posixpath.basename(r)))
                 for r in rel.filter(long).to_pylist()]
        rel = pc.replace_with_mask(rel, long, pa.array(fixed, pa.string()))
    base = storage.join(out, "audio", variant) + "/"
    return pc.binary_join_element_wise(pa.scalar(base), rel, "")


def tasks(chunk: pa.Table, spec_index: int, spec: ModelSpec, out: str, root: str, run_seed: int) -> pa.Table:
    """The reconstruction tasks of one model for a chunk of corpus listing rows (see manifests.listing):
    ids, input and output paths, seed, the columns copied from the source, and the source's own facts
    (label, attack, file identity) for the worker that describes it."""
    n = chunk.num_rows
    variant = spec.variant
    attack = chunk["attack"].cast(pa.string())
    recon_attack = pc.if_else(pc.equal(attack, "-"), pa.scalar(variant),
                              pc.binary_join_element_wise(attack, pa.scalar(variant), "+"))
    return pa.table({
        "utt_id": pc.binary_join_element_wise(chunk["utt_id"], pa.scalar(f"__{variant}"), ""),
        "source_id": chunk["utt_id"],
        "src_path": chunk["path"],
        "out_path": output_paths(chunk["path"], root, out, variant),
        "seed": clip_seeds(run_seed, chunk["utt_id"], variant),
        "spec": pa.array([spec_index] * n, pa.int32()),
        "attack": recon_attack,
        "speaker": chunk["speaker"].cast(pa.string()),
        "language": chunk["language"].cast(pa.string()),
        "split": chunk["split"].cast(pa.string()),
        "src_label": chunk["label"].cast(pa.string()),
        "src_attack": attack,
        "src_size": chunk["file_size"],
        "src_mtime_ns": chunk["file_mtime_ns"],
        "src_problem": chunk["problem"],
        "describe": pa.array([False] * n, pa.bool_()),
        "reconstruct": pa.array([True] * n, pa.bool_()),
    })

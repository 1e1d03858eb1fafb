"""The plan of a run: which back-ends (model specs) over which clips, and what is already done.

The plan is a columnar pyarrow table (one row per clip x model), so a corpus of any size
streams to the workers without a Python object per clip in the driver.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import posixpath

import pyarrow as pa

import manifests
from manifests import storage
from manifests.errors import UsageError
from manifests.schema import METHODS

from . import weights
from .backends import BACKENDS, get

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
    params_json: str = "{}"          # user-given parameters, canonical JSON
    checkpoint: str | None = None

    @property
    def params(self) -> dict:
        return json.loads(self.params_json)

    @property
    def variant(self) -> str:
        """Folder and utt_id suffix: the name, plus the user's parameters when any."""
        p = self.params
        return self.name if not p else self.name + "@" + ",".join(f"{k}={v}" for k, v in sorted(p.items()))


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
                   checkpoint: str | None) -> tuple[list[ModelSpec], list[str]]:
    """Model specs for the requested paradigms/models, plus notices about defaults chosen."""
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
    fields = {n: {f.name for f in dataclasses.fields(get(n).Params)} for n in names}
    unused = [k for k in params if not any(k in f for f in fields.values())]
    if unused:
        raise UsageError(f"no selected model has parameter {unused[0]!r} (models: {', '.join(names)})")
    specs = []
    for n in names:
        own = {k: v for k, v in params.items() if k in fields[n]}
        specs.append(ModelSpec(n, get(n).method, json.dumps(own, sort_keys=True), checkpoint))
    return specs, notices


def clip_seed(run_seed: int, source_id: str, variant: str) -> int:
    """A stable per-clip seed in [0, 2**63)."""
    digest = hashlib.sha256(f"{run_seed}:{source_id}:{variant}".encode()).digest()
    return int.from_bytes(digest[:8], "big") & (2**63 - 1)


def reconstruction_attack(source_attack: str | None, variant: str) -> str:
    """Attack id of a reconstruction: the back-end, after the source's attack for corpus spoofs."""
    return variant if source_attack in (None, "-") else f"{source_attack}+{variant}"


def build_tasks(originals: list[dict], specs: list[ModelSpec], out: str, root: str, run_seed: int) -> pa.Table:
    """One row per (ok original, spec): ids, input and output paths, seed, copied corpus columns.

    Output audio mirrors the corpus tree under `root`: out/audio/VARIANT/REL_PATH.flac.
    """
    ok = [r for r in originals if r["status"] == "ok"]
    cols: dict[str, list] = {k: [] for k in (
        "utt_id", "source_id", "src_path", "out_path", "seed", "spec", "attack", "speaker", "language", "split")}
    rels = [posixpath.splitext(storage.relative(r["path"], root))[0] + ".flac" for r in ok]
    for i, spec in enumerate(specs):
        for r, rel in zip(ok, rels):
            cols["utt_id"].append(f"{r['utt_id']}__{spec.variant}")
            cols["source_id"].append(r["utt_id"])
            cols["src_path"].append(r["path"])
            cols["out_path"].append(storage.join(out, "audio", spec.variant, rel))
            cols["seed"].append(clip_seed(run_seed, r["utt_id"], spec.variant))
            cols["spec"].append(i)
            cols["attack"].append(reconstruction_attack(r.get("attack"), spec.variant))
            for k in ("speaker", "language", "split"):
                cols[k].append(r.get(k))
    types = {"seed": pa.int64(), "spec": pa.int32()}
    return pa.table({k: pa.array(v, types.get(k, pa.string())) for k, v in cols.items()})


def done_ids(manifest_dir: str, retry_failed: bool) -> set[str]:
    """utt_ids already in the output manifest that need no work (failed ones too, unless retried)."""
    if storage.kind(manifest_dir) != storage.DIR or not manifests.part_files(manifest_dir):
        return set()
    table = manifests.read(manifest_dir, columns=["utt_id", "status", "kind"])
    rows = zip(table["utt_id"].to_pylist(), table["status"].to_pylist(), table["kind"].to_pylist())
    return {u for u, s, k in rows if k == "reconstruction" and (s == "ok" or not retry_failed)}

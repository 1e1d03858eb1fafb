"""Checks `reconstruct run` makes before any work: option values, and a plan that would overwrite.

Every problem is a UsageError (one line, exit 2) naming what was given and what is allowed.
"""
from __future__ import annotations

import math
import re

import pyarrow as pa
import pyarrow.compute as pc

from manifests import storage
from manifests.listing import CHUNK, duplicates

from manifests.errors import UsageError

from .config import RunConfig


def check_options(cfg: RunConfig) -> None:
    """Option values the CLI types cannot check."""
    for option, value in (("--out", cfg.out), ("--corpus", cfg.corpus)):
        if not str(value).strip():
            raise UsageError(f"{option} is empty; give a folder (an empty {option} would mean the current folder)")
    if cfg.batch_size < 1 or cfg.workers < 0 or not 0 <= cfg.gpus_per_worker < math.inf:
        raise UsageError("--batch-size must be >= 1, --workers and --gpus-per-worker >= 0")
    if cfg.limit is not None and cfg.limit < 1:
        raise UsageError(f"--limit must be at least 1, got {cfg.limit} (leave it out for the whole corpus)")
    if not 0 <= cfg.max_failure_rate <= 1:
        raise UsageError(f"--max-failure-rate is a share of clips in [0, 1], got {cfg.max_failure_rate}")
    if not 0 <= cfg.threads_per_worker <= 1024:
        raise UsageError(f"--threads-per-worker must be in [0, 1024] (0 = share the cores), got {cfg.threads_per_worker}")
    if not 0 < cfg.max_duration_s < math.inf:
        raise UsageError(f"--max-duration must be a positive number of seconds, got {cfg.max_duration_s}")
    check_device(cfg.device, cfg.executor, cfg.gpus_per_worker)


def check_device(device: str, executor: str = "local", gpus_per_worker: float = 0.0) -> None:
    """`device` must be auto or a torch device string; a GPU one needs a GPU where the work runs."""
    if device == "auto":
        return
    import torch

    try:
        kind = torch.device(device).type
    except (RuntimeError, ValueError):
        raise UsageError(f"--device {device!r} is not a device; use auto, cpu, cuda or cuda:N") from None
    if kind == "cpu":
        return
    if kind != "cuda":
        raise UsageError(f"--device {device!r}: reconstruct runs on cpu or cuda, not {kind}")
    if executor == "ray":
        if gpus_per_worker <= 0:
            raise UsageError(f"--device {device} with Ray needs --gpus-per-worker F so actors get a GPU")
    elif not torch.cuda.is_available():
        raise UsageError(f"--device {device} but torch sees no GPU on this machine; use --device cpu")


def _reserved(names: list[str]) -> str:
    """A regex for utt_ids that end the way a reconstruction's does: `__<back-end>` or `__<back-end>@<params>`."""
    alternatives = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    return rf"__(?:{alternatives})(?:@.*)?$"


def _stems(paths):
    """Paths without their suffix: what names a clip's output files."""
    return pc.replace_substring_regex(paths, r"\.[^./]*$", "")


def _shared_stem(table: pa.Table) -> str | None:
    """The first path stem two clips share, or None. Where every stem is one prefix + the clip's utt_id (a
    folder's listing: root/ + utt_id; an ASVspoof protocol: root/flac/ + utt_id) stems are as distinct as
    utt_ids, so no column of stems is built; checked CHUNK rows at a time."""
    if not table.num_rows:
        return None
    first = table.slice(0, 1).select(["utt_id", "path"]).to_pylist()[0]
    stem0 = _stems(pa.array([first["path"]]))[0].as_py()
    prefix = stem0[: len(stem0) - len(first["utt_id"])] if stem0.endswith(first["utt_id"]) else None
    if prefix is not None and all(
            pc.all(pc.equal(_stems(c["path"]), pc.binary_join_element_wise(pa.scalar(prefix), c["utt_id"], ""))).as_py()
            for c in (table.slice(start, CHUNK) for start in range(0, table.num_rows, CHUNK))):
        dup = duplicates(table["utt_id"])
        return None if dup is None else prefix + dup
    return duplicates(_stems(table["path"]))


def check_plan(listing: pa.Table, specs: list, out: str, backend_names: list[str]) -> None:
    """Refuse a plan that would overwrite, before any work (columnar checks on the corpus listing): a
    corpus utt_id with a reconstruction's suffix (its row would be replaced by the reconstruction of
    another clip), two corpus clips with one output file (same path but for the suffix), or a corpus
    clip inside OUT/audio (a reconstruction would overwrite it). Names the first offender."""
    ids = listing["utt_id"]
    bad = ids.filter(pc.match_substring_regex(ids, _reserved(backend_names)))
    if len(bad):
        raise UsageError(f"corpus utt_id {bad[0].as_py()!r} ends like a reconstruction's id (<utt_id>__<model>); "
                         "rename it (e.g. replace the double underscore)")
    audio = storage.join(out, "audio") + "/"
    inside = listing["path"].filter(pc.starts_with(listing["path"], audio))
    if len(inside):
        raise UsageError(f"the corpus clip {inside[0].as_py()} lies in {audio}, where reconstructions are written; "
                         "choose an --out outside the corpus audio")
    stem = _shared_stem(listing)
    if stem is not None:
        pair = listing.filter(pc.equal(_stems(listing["path"]), stem)).select(["utt_id", "path"]).to_pylist()[:2]
        raise UsageError(f"corpus clips {pair[0]['utt_id']!r} ({pair[0]['path']}) and {pair[1]['utt_id']!r} "
                         f"({pair[1]['path']}) would both be reconstructed to one file (output names drop the "
                         "suffix); rename or drop one of them")

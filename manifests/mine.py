"""`manifests mine`: keep the reconstructions a detector finds hardest (or, as the control, as many at random).

Hardness is the bona fide score (logit) a detector gave a reconstruction, from a scores file of
`detector score --input CANDIDATES`: a spoof scored as bona fide is one the detector is fooled by.
Reconstructions are grouped by their source (`per="source"`: of each original's reconstructions,
e.g. one per grid point, the hardest `keep` share) or by their model variant (`per="model"`: of each
variant's reconstructions the hardest share); each group keeps ceil(keep × size), at least one. Every
other row (originals, corpus spoofs) is kept as it is, so the result trains as the candidates did.
Kept reconstructions get `hardness` and `scored_by_sha256` (schema 1.1).
"""
from __future__ import annotations

import collections
import math
import os

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import io, scores_tsv, storage
from .errors import UsageError

PER = ("source", "model")


def _scores(path: str) -> tuple[dict[str, float | None], str | None]:
    """{id: score or None (could not be scored)} of a scores file, and the scoring weights' sha256 its header
    names; a duplicated id is a UsageError. Read by the scores file's own reader (quoted fields included)."""
    rows = scores_tsv.read(path)
    if not rows or "id" not in rows[0] or "score" not in rows[0]:
        raise UsageError(f"{path} is not a scores file of `detector score` (needs columns id and score)")
    counts = collections.Counter(r["id"] for r in rows)
    dup = [i for i, n in counts.items() if n > 1]
    if dup:
        raise UsageError(f"{path}: {len(dup)} id(s) occur more than once, e.g. {dup[0]!r}; scores must join by utt_id")
    return ({r["id"]: float(r["score"]) if r["score"] not in ("", None) else None for r in rows},
            scores_tsv.checkpoint_sha256(path))


def mine(manifest: str | os.PathLike, scores: str | os.PathLike | None, keep: float, per: str,
         out: str | os.PathLike, random: bool = False, seed: int = 0) -> dict:
    """Write the mined manifest to `out` (a .parquet file); returns counts. `scores` may be None only for a
    random selection (then no hardness is recorded)."""
    if not 0 < keep <= 1:
        raise UsageError(f"--keep is a share in (0, 1], got {keep}")
    if per not in PER:
        raise UsageError(f"--per is one of {', '.join(PER)}, got {per!r}")
    if storage.suffix(out) != ".parquet":
        raise UsageError(f"--out {out}: the mined manifest is a Parquet file; give a name ending in .parquet")
    if scores is None and not random:
        raise UsageError("mining the hardest needs --scores (of `detector score --input MANIFEST`); or pass --random")
    table = io.read(manifest)
    recon = pc.and_(pc.equal(table["kind"], "reconstruction"), pc.equal(table["status"], "ok"))
    cands = table.filter(recon)
    if not cands.num_rows:
        raise UsageError(f"{manifest} has no ok reconstruction to mine")
    ids = cands["utt_id"].to_pylist()
    score_of, sha = _scores(os.fspath(scores)) if scores is not None else ({u: None for u in ids}, None)
    missing = [u for u in ids if u not in score_of]
    if missing:
        raise UsageError(f"{len(missing)} reconstruction(s) of {manifest} have no row in {scores}, e.g. {missing[0]!r}; "
                         "score the same manifest (`detector score --input MANIFEST`)")
    known = set(table["utt_id"].to_pylist())
    stray = [u for u in score_of if u not in known]
    if stray:
        raise UsageError(f"{len(stray)} id(s) of {scores} are not in {manifest}, e.g. {stray[0]!r}; "
                         "these scores are of another manifest")
    hardness = np.array([np.nan if score_of[u] is None else score_of[u] for u in ids], dtype=np.float64)
    scored = np.isfinite(hardness) if scores is not None else np.ones(len(ids), bool)
    # per model: the model variant, what follows `__` in a reconstruction's id (grid points are variants of their own)
    key = cands["source_id"].to_pylist() if per == "source" else [u.split("__", 1)[1] for u in ids]
    groups: dict[str, list[int]] = {}
    for i, g in enumerate(key):
        if scored[i]:
            groups.setdefault(g, []).append(i)
    rng = np.random.default_rng(seed)
    chosen = []
    for g in sorted(groups):
        idx = np.array(groups[g])
        k = max(1, math.ceil(keep * len(idx) - 1e-9))
        order = rng.permutation(len(idx)) if random else np.argsort(-hardness[idx], kind="stable")
        chosen.extend(idx[order[:k]].tolist())
    chosen.sort()
    kept = cands.take(pa.array(chosen, pa.int64()))
    kept = kept.set_column(kept.schema.get_field_index("hardness"), "hardness",
                           pa.array(hardness[chosen], pa.float32(), from_pandas=True))  # NaN (unscored) -> null
    kept = kept.set_column(kept.schema.get_field_index("scored_by_sha256"), "scored_by_sha256",
                           pa.array([sha] * len(chosen), pa.string()))
    result = pa.concat_tables([table.filter(pc.invert(recon)), kept])
    io.write(result.to_pylist(), out)
    return {"candidates": len(ids), "unscored": int((~scored).sum()), "kept": len(chosen), "groups": len(groups),
            "mean_hardness_kept": float(np.nanmean(hardness[chosen])) if scores is not None else float("nan"),
            "mean_hardness_all": float(np.nanmean(hardness)) if scores is not None else float("nan"),
            "scored_by_sha256": sha, "out": storage.normalize(out)}

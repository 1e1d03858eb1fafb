"""Paired batch sampler: bona fide originals travel with their own reconstructions, and every spoof is drawn.

Three pools are formed from the training clips:

- **bona fide**: every clip labelled bona fide (originals, and reconstructions relabelled by
  `--bonafide-methods`);
- **own reconstructions**: spoof-labelled reconstructions of a bona fide original of the pool,
  grouped by variant (`method/model`);
- **other spoofs**: corpus spoofs, reconstructions of spoofs, and reconstructions whose original is
  not in the training clips ("orphans", counted in `summary`).

A batch of B clips holds h = B // 2 bona fide and B - h spoofs; of the spoof slots,
round(recon_share * (B - h)) go to reconstructions *of that batch's own originals*, the rest to
other spoofs (at least one when other spoofs exist, so hard samples are added to the attacks,
never in place of them). A slot with nothing of its kind to fill it takes the other kind.

**An epoch** is as many batches as it takes to draw every bona fide clip and every other spoof
at least once (the smaller pool cycles, reshuffled on every pass), rounded up to a multiple of the
DDP world size. Reconstruction slots rotate over the variants, so when several methods or
models reconstructed the same original they get the slots evenly, whatever the manifest order
(clips are ordered by utt_id first). A reconstruction is drawn in the batch of its own original;
the only exception is a batch that has neither an own reconstruction nor another spoof to fill a
spoof slot, which then takes a reconstruction of another original (`summary` counts the share
that was paired).

Each item is `(dataset index, view)`: an original and the reconstructions drawn with it share
`view`, so ClipDataset gives them the same crop window and augmentation draw. Deterministic for
(seed, epoch); O(n) per epoch. Under DDP, global batch k is the world_size consecutive batches
k*W .. k*W+W-1, one per rank: every shard has B clips, h of them bona fide, and the union of the
shards is exactly the single-process epoch (the loss gathers the global batch, see distributed.py).
"""
from __future__ import annotations

import math
from typing import Iterator, Sequence

import numpy as np
import pyarrow.compute as pc
from torch.utils.data import Sampler

from manifests.errors import UsageError
from manifests.listing import release_unused

from .clips import Clips
from .data import BONAFIDE, Clip

Item = tuple[int, int]  # (dataset index, view)


def variant_of(clip: Clip) -> str:
    """The reconstruction variant a clip belongs to: 'method/model'."""
    return f"{clip.method or '-'}/{clip.model or '-'}"


class _Cycle:
    """Endless draws from `items`, a fresh permutation on every pass; one `take` never repeats an item
    unless it asks for more than there are (a new pass puts what this take already has last)."""

    def __init__(self, items: np.ndarray, rng: np.random.Generator):
        self.items, self.rng, self.order, self.pos = items, rng, np.zeros(0, dtype=np.int64), 0

    def take(self, n: int) -> list[int]:
        out: list[int] = []
        while len(out) < n and len(self.items):
            if self.pos == len(self.order):
                order = self.items[self.rng.permutation(len(self.items))]
                if out:
                    taken = np.isin(order, out)
                    order = np.concatenate([order[~taken], order[taken]])
                self.order, self.pos = order, 0
            k = min(n - len(out), len(self.order) - self.pos)
            out += self.order[self.pos:self.pos + k].tolist()
            self.pos += k
        return out


def _variants(table: Clips, rows: np.ndarray) -> tuple[list[str], np.ndarray]:
    """(the sorted 'method/model' names of `rows`, each row's index into them), from the columns'
    dictionary codes: no string per row."""
    pairs = []
    for name in ("method", "model"):
        col = table.column(name)  # dictionary-encoded (Clips)
        words = ["-" if w is None or w == "" else w for w in col.dictionary.to_pylist()]
        codes = pc.fill_null(col.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)[rows]
        pairs.append((words + ["-"], np.where(codes < 0, len(words), codes)))  # null: the last word, '-'
    (w1, c1), (w2, c2) = pairs
    keys, inverse = np.unique(c1 * len(w2) + c2, return_inverse=True)
    names = [f"{w1[k // len(w2)]}/{w2[k % len(w2)]}" for k in keys.tolist()]
    variants = sorted(set(names))
    rank = np.array([variants.index(n) for n in names], dtype=np.int64)
    return variants, (rank[inverse.reshape(-1)] if len(rows) else np.zeros(0, np.int64)).astype(np.int16)


class _Plan:
    """An epoch's batches as two (batches, batch size) integer arrays, dataset index and view (a Python tuple
    per item would cost 0.1 KiB a row at a million rows); `plan[k]` is batch k as a list of (index, view)."""

    def __init__(self, n_batches: int, batch_size: int):
        number = np.int32 if n_batches * batch_size < 2 ** 31 else np.int64  # rows and views: 4 bytes each
        self.index = np.zeros((n_batches, batch_size), number)
        self.view = np.zeros((n_batches, batch_size), number)
        self.valid = np.zeros((n_batches, batch_size), bool)  # a batch never holds more than batch_size items

    def set(self, k: int, batch: list[Item]) -> None:
        n = len(batch)
        if n:
            self.index[k, :n], self.view[k, :n] = zip(*batch)
        self.valid[k, :n] = True

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, k: int) -> list[Item]:
        n = int(self.valid[k].sum())
        return list(zip(self.index[k, :n].tolist(), self.view[k, :n].tolist()))

    def __iter__(self) -> Iterator[list[Item]]:
        for k in range(len(self)):
            yield self[k]


class PairedBatchSampler(Sampler[list[Item]]):
    """Yields lists of (dataset index, view) pairs: this rank's batch of each global batch."""

    def __init__(self, clips: Sequence[Clip], batch_size: int, seed: int = 688, rank: int = 0, world_size: int = 1,
                 recon_share: float | None = None):
        if batch_size < 2:
            raise UsageError(f"batch size {batch_size} is too small for paired batches; use at least 2")
        if recon_share is not None and not 0.0 <= recon_share <= 1.0:
            raise UsageError(f"--recon-share {recon_share} is outside [0, 1]")
        self.batch_size, self.seed, self.rank, self.world = batch_size, seed, rank, world_size
        self.epoch = 0
        table = Clips.of(clips)  # columns: the pools are made without a Python object per clip
        row = np.int32 if len(table) < 2 ** 31 else np.int64  # row numbers: 4 bytes each, not 8
        order = pc.sort_indices(table.column("utt_id")).to_numpy().astype(row)  # manifest order does not matter
        labels, recon = table.labels(), table.is_reconstruction()
        bona = order[labels[order] == BONAFIDE]
        anchor = table.positions_of_sources((labels == BONAFIDE) & ~recon).astype(row)  # a bona fide original, or -1
        from_spoof = table.positions_of_sources((labels != BONAFIDE) & ~recon) >= 0
        spoofs = order[labels[order] != BONAFIDE]
        del order
        paired = recon[spoofs] & (anchor[spoofs] >= 0)
        others = spoofs[~paired]
        self.orphans = int((recon[spoofs] & ~paired & ~from_spoof[spoofs]).sum())
        rec = spoofs[paired]  # reconstructions of bona fide originals, in utt_id order
        del spoofs, paired, from_spoof
        self.variants, codes = _variants(table, rec)  # sorted 'method/model' names, each rec's index into them
        by_anchor = np.lexsort((codes, anchor[rec]))  # stable: utt_id order within (anchor, variant)
        self._rec_idx, self._rec_anchor, self._rec_variant = rec[by_anchor], anchor[rec][by_anchor], codes[by_anchor]
        del anchor, codes, by_anchor
        if not len(bona):
            raise UsageError("the training split has no bona fide clips; the paired sampler needs some "
                             "(check the split column and --bonafide-methods)")
        self.bona, self.others = bona, others
        self._is_other = np.zeros(len(table), bool)
        self._is_other[self.others] = True
        self._source_of = np.full(len(table), -1, row)  # a paired reconstruction's original, else -1
        self._source_of[self._rec_idx] = self._rec_anchor
        self.n_recons = len(self._rec_idx)
        self.n_anchors = len(np.unique(self._rec_anchor))
        spoofs = len(others) + self.n_recons
        if spoofs == 0:
            raise UsageError("the training split has no spoof clips; the paired sampler needs some")
        self.recon_share = (0.5 if len(others) else 1.0) if recon_share is None else recon_share
        self.n_bona = batch_size // 2
        n_spoof = batch_size - self.n_bona
        self.n_recon = math.floor(self.recon_share * n_spoof + 0.5) if self.n_recons else 0
        if len(others):
            self.n_recon = min(self.n_recon, n_spoof - 1)  # corpus spoofs keep at least one slot
        self.n_other = n_spoof - self.n_recon
        batches = math.ceil(len(bona) / self.n_bona)
        if len(others):
            batches = max(batches, math.ceil(len(others) / self.n_other))
        self.n_batches = math.ceil(batches / world_size) * world_size
        self._cache: tuple[int, _Plan, dict] | None = None
        release_unused()  # the sort, the source look-ups and the masks are gone: hand their memory back

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _recons_of(self, anchor: int) -> dict[str, list[int]] | None:
        """{variant: its reconstructions (utt_id order)} of one bona fide original, or None."""
        lo, hi = np.searchsorted(self._rec_anchor, [anchor, anchor + 1])
        if lo == hi:
            return None
        per: dict[str, list[int]] = {}
        for k in range(lo, hi):
            per.setdefault(self.variants[self._rec_variant[k]], []).append(int(self._rec_idx[k]))
        return per

    def _own_recons(self, originals: list[int], slots: int, turn: int, rng) -> tuple[list[tuple[int, int]], int]:
        """Up to `slots` distinct (original position, reconstruction index) of these originals, one per
        original per round, the variant rotating with `turn` (a running counter)."""
        picked: list[tuple[int, int]] = []
        used: set[int] = set()
        n_var = len(self.variants)
        while len(picked) < slots:
            progress = False
            for pos, a in enumerate(originals):
                per = self._recons_of(a)
                if len(picked) == slots:
                    break
                if not per:
                    continue
                for step in range(n_var):  # the turn's variant, else the next one this original has
                    cands = [i for i in per.get(self.variants[(turn + step) % n_var], ()) if i not in used]
                    if cands:
                        idx = cands[int(rng.integers(len(cands)))] if len(cands) > 1 else cands[0]
                        picked.append((pos, idx))
                        used.add(idx)
                        turn += 1
                        progress = True
                        break
            if not progress:
                break
        return picked, turn

    def _plan(self) -> tuple[_Plan, dict]:
        """Every batch of the epoch (all ranks), and its counts."""
        if self._cache is not None and self._cache[0] == self.epoch:
            return self._cache[1], self._cache[2]
        self._cache = None  # the previous epoch's plan goes before this one is made
        rng = np.random.default_rng([self.seed, self.epoch])
        bona, others = _Cycle(self.bona, rng), _Cycle(self.others, rng)
        all_recons = _Cycle(np.sort(self._rec_idx), rng)
        turn = int(rng.integers(max(len(self.variants), 1)))
        n_spoof = self.batch_size - self.n_bona
        plan = _Plan(self.n_batches, self.batch_size)  # numpy arrays: a Python tuple per item cost 0.1 KiB a row
        view = 0
        for b in range(self.n_batches):
            originals = bona.take(self.n_bona)
            views = list(range(view, view + len(originals)))
            view += len(originals)
            batch: list[Item] = list(zip(originals, views))
            own, turn = self._own_recons(originals, self.n_recon, turn, rng)
            if own and len(own) < self.n_recon and not len(self.others):  # nothing else to add: own ones again
                own += [own[k % len(own)] for k in range(self.n_recon - len(own))]
            batch += [(idx, views[pos]) for pos, idx in own]
            fill = others.take(n_spoof - len(own))
            if len(own) + len(fill) < n_spoof:  # no own reconstruction and no other spoof: take any reconstruction
                fill += all_recons.take(n_spoof - len(own) - len(fill))
            for i in fill:
                batch.append((i, view))
                view += 1
            plan.set(b, batch)
        stats = self._count(plan)
        self._cache = (self.epoch, plan, stats)
        release_unused()  # the draws' Python objects and _count's arrays are gone
        return plan, stats

    def _count(self, plan: _Plan) -> dict:
        """Draws per pool over the epoch; a reconstruction of a bona fide original is paired when its original
        is in the same *global* batch (the W consecutive batches the DDP ranks train on together). Counted a
        block of global batches at a time, so that the sorts' arrays stay small."""
        stats = {"recon_drawn": 0, "recon_paired": 0, "other_drawn": 0, "bona_drawn": 0}
        n, step = np.int64(len(self._source_of)), self.world * max(1, 65536 // (self.world * self.batch_size))
        for start in range(0, len(plan), step):
            valid = plan.valid[start:start + step]
            drawn = plan.index[start:start + step][valid]
            group = np.broadcast_to((np.arange(len(valid)) // self.world)[:, None], valid.shape)[valid]
            source = self._source_of[drawn]
            recon = source >= 0
            present = np.unique(group * n + drawn)  # (global batch, clip) pairs drawn
            other = self._is_other[drawn[~recon]]
            stats["recon_drawn"] += int(recon.sum())
            stats["recon_paired"] += int(np.isin(group[recon] * n + source[recon], present).sum())
            stats["other_drawn"] += int(other.sum())
            stats["bona_drawn"] += int((~other).sum())
        return stats

    def epoch_stats(self) -> dict:
        """Counts of the current epoch: bona_drawn, other_drawn, recon_drawn (reconstructions of bona fide
        originals), recon_paired (of those, drawn in the batch of their own original), paired_share."""
        _, stats = self._plan()
        return {**stats, "paired_share": stats["recon_paired"] / stats["recon_drawn"] if stats["recon_drawn"] else 1.0}

    def summary(self) -> str:
        """One line describing the pools and the epoch, for the training log."""
        return (f"sampler: epoch = {self.n_batches // self.world} global batch(es) of {self.batch_size * self.world} "
                f"({self.world} x {self.batch_size}: {self.n_bona} bona fide, {self.n_recon} own reconstruction(s), "
                f"{self.n_other} other spoof(s)); pools: {len(self.bona)} bona fide, {self.n_recons} reconstruction(s) "
                f"of {self.n_anchors} of them in {len(self.variants)} variant(s) {', '.join(self.variants) or '-'}, "
                f"{len(self.others)} other spoof(s) (of which {self.orphans} reconstruction(s) whose original is not "
                f"in the training clips); recon share {self.recon_share:g}")

    def __iter__(self) -> Iterator[list[Item]]:
        batches, _ = self._plan()
        for k in range(self.rank, len(batches), self.world):
            yield batches[k]

    def __len__(self) -> int:
        return self.n_batches // self.world

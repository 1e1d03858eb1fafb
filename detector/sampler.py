"""Paired batch sampler: bona fide originals travel with their own reconstructions.

Each global batch holds batch/2 bona fide originals, then their own reconstructions (up to half
of the spoof slots when corpus spoofs exist), then other spoofs (corpus spoofs, reconstructions of
spoofs, reconstructions that did not fit), so the classes are balanced. Under DDP the global batch is split
into `world_size` equal contiguous shards; the loss gathers them back (see distributed.py), so a
pair split across two processes still meets in L_enh.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler

from manifests.errors import UsageError

from .data import BONAFIDE, Clip


class PairedBatchSampler(Sampler[list[int]]):
    """Yields lists of dataset indices (this rank's shard of each global batch)."""

    def __init__(self, clips: Sequence[Clip], batch_size: int, seed: int = 688, rank: int = 0, world_size: int = 1):
        if batch_size < 2:
            raise UsageError(f"batch size {batch_size} is too small for paired batches; use at least 2")
        self.batch_size, self.seed, self.rank, self.world = batch_size, seed, rank, world_size
        self.epoch = 0
        by_source = defaultdict(list)
        for i, c in enumerate(clips):
            if c.kind == "reconstruction":
                by_source[c.source_id].append(i)
        self.groups, self.others, grouped = [], [], set()
        for i, c in enumerate(clips):
            if c.kind != "reconstruction" and c.label == BONAFIDE:
                group = [i] + by_source.get(c.utt_id, [])
                self.groups.append(group)
                grouped.update(group)
        self.others = [i for i in range(len(clips)) if i not in grouped]
        if not self.groups:
            raise UsageError("the training split has no bona fide originals; the paired sampler needs some "
                             "(check the split column and --bonafide-methods)")

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _global_batches(self) -> list[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        size = self.batch_size * self.world
        n_bona = max(1, size // 2)
        groups = [self.groups[k] for k in rng.permutation(len(self.groups))]
        others = [self.others[k] for k in rng.permutation(len(self.others))]
        # reconstructions take half of the spoof slots when corpus spoofs exist, all of them otherwise
        recon_budget = max(1, (size - n_bona) // 2) if others else size - n_bona
        spare: list[int] = []  # reconstructions that did not fit next to their source this time
        cursor, out = 0, []
        for start in range(0, len(groups), n_bona):
            chunk = groups[start:start + n_bona]
            batch = [g[0] for g in chunk]
            recons = [i for g in chunk for i in g[1:]]
            batch += recons[:recon_budget]
            while len(batch) < size and (spare or others):  # top up with spoofs for class balance
                if spare:
                    batch.append(spare.pop(0))
                else:
                    batch.append(others[cursor % len(others)])
                    cursor += 1
            spare += recons[recon_budget:]  # used by later batches, so corpus spoofs keep their share
            while len(batch) < size:  # nothing else to add: repeat to keep the shards equal
                batch.append(batch[len(batch) % len(chunk)])
            out.append(batch)
        return out

    def __iter__(self) -> Iterator[list[int]]:
        for b in self._global_batches():
            yield b[self.rank * self.batch_size:(self.rank + 1) * self.batch_size]

    def __len__(self) -> int:
        return len(self._global_batches())

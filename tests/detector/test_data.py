from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from detector.data import BONAFIDE, SPOOF, Clip, ClipDataset, assign_splits, collate, fix_length, load_clips, windows
from detector.sampler import PairedBatchSampler
from manifests.errors import UsageError


def clip(uid, label, kind="original", source=None, speaker=None, split=None, method=None):
    return Clip(uid, f"/x/{uid}.flac", label, kind, source or uid, method, None, "-" if label else "A01", speaker, split)


def test_label_policy_and_bonafide_methods(manifest: Path):
    clips = load_clips([manifest])
    recs = [c for c in clips if c.kind == "reconstruction"]
    assert recs and all(c.label == SPOOF for c in recs)
    relabelled = load_clips([manifest], bonafide_methods=["vocoder"], require_both=False)
    assert all(c.label == BONAFIDE for c in relabelled if c.kind == "reconstruction")


def test_reconstruction_stays_in_source_split():
    clips = [clip("a", 1, split="dev"), clip("b", 1, split="train"),
             clip("a_r", 0, "reconstruction", "a", split="train"),  # wrong split in the manifest: corrected
             clip("b_r", 0, "reconstruction", "b")]
    out = {c.utt_id: c.split for c in assign_splits(clips)}
    assert out == {"a": "dev", "b": "train", "a_r": "dev", "b_r": "train"}


def test_speaker_disjoint_split_when_absent():
    clips = [clip(f"s{s}_{i}", 1, speaker=f"spk{s}") for s in range(20) for i in range(3)]
    clips += [clip(f"s{s}_{i}_r", 0, "reconstruction", f"s{s}_{i}") for s in range(20) for i in range(3)]
    out = assign_splits(clips, dev_fraction=0.3)
    by_spk = {}
    for c in out:
        if c.kind == "original":
            by_spk.setdefault(c.speaker, set()).add(c.split)
    assert all(len(s) == 1 for s in by_spk.values())
    assert {"train", "dev"} == {s for v in by_spk.values() for s in v}
    split = {c.utt_id: c.split for c in out}
    assert all(split[c.utt_id] == split[c.source_id] for c in out)


def test_sampler_puts_pairs_in_one_batch_and_balances():
    clips = [clip(f"b{i}", 1) for i in range(6)] + [clip(f"b{i}_r", 0, "reconstruction", f"b{i}") for i in range(6)]
    clips += [clip(f"s{i}", 0) for i in range(6)]
    sampler = PairedBatchSampler(clips, batch_size=4, seed=1)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 3
    seen_pair = 0
    for b in batches:
        ids = {clips[i].utt_id for i in b}
        labels = [clips[i].label for i in b]
        assert labels.count(1) == 2 and labels.count(0) == 2
        seen_pair += sum(f"{u}_r" in ids for u in ids)
    assert seen_pair == 3  # one reconstruction slot per batch, always next to its own source
    rank_batches = [list(PairedBatchSampler(clips, 2, seed=1, rank=r, world_size=2)) for r in (0, 1)]
    merged = [a + b for a, b in zip(*rank_batches)]
    assert merged == batches


def test_sampler_needs_bonafide():
    with pytest.raises(UsageError, match="no bona fide"):
        PairedBatchSampler([clip("s", 0)], 2)


def test_fix_length_and_windows():
    x = np.arange(5, dtype=np.float32)
    assert fix_length(x, 12).tolist() == [0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1]
    assert fix_length(np.arange(10.0), 4, offset=3).tolist() == [3, 4, 5, 6]
    w = windows(np.arange(10.0), 4)
    assert w.shape == (3, 4) and w[-1].tolist() == [6, 7, 8, 9]
    assert windows(x, 8).shape == (1, 8)


def test_dataset_skips_unreadable(manifest: Path, tmp_path: Path):
    clips = load_clips([manifest])
    bad = tmp_path / "bad.flac"
    bad.write_bytes(b"not audio")
    clips[0] = replace(clips[0], path=str(bad))
    ds = ClipDataset(clips, crop=4000, train=True, seed=0)
    batch = collate([ds[0], ds[1], ds[2]])
    assert batch["wav"].shape == (2, 4000) and batch["failed"][0][0] == 0
    assert np.array_equal(ds[1]["wav"].numpy(), ds[1]["wav"].numpy())  # deterministic per (seed, epoch, index)

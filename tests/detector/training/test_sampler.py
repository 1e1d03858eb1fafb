"""PairedBatchSampler: what one epoch draws, on the manifest shapes users have.

Every test looks at the drawn clips themselves (which utt_ids, in which global batch), not at label
counts: the bug these guard against drew all originals and their reconstructions but only the first
batch's share of corpus spoofs.
"""
from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detector.training.data import BONAFIDE, SPOOF, Clip
from detector.training.sampler import PairedBatchSampler, variant_of
from manifests.errors import UsageError


def original(uid: str, label: int, attack: str = "-") -> Clip:
    return Clip(uid, f"/x/{uid}.flac", label, "original", uid, None, None, attack if label == SPOOF else "-", None, "train")


def recon(source: str, model: str = "gl", method: str = "vocoder", attack: str = "gl") -> Clip:
    return Clip(f"{source}__{model}", f"/x/{source}__{model}.flac", SPOOF, "reconstruction", source, method, model,
                attack, None, "train")


def shape(n_bona: int, n_spoof: int, models: tuple[str, ...] = ("gl",), recon_spoofs: bool = False,
          with_recon: float = 1.0) -> list[Clip]:
    """n_bona bona fide originals (the first `with_recon` share reconstructed by every model), n_spoof corpus
    spoofs over two attacks (reconstructed too when recon_spoofs)."""
    clips = [original(f"b{i:04d}", BONAFIDE) for i in range(n_bona)]
    clips += [original(f"s{i:04d}", SPOOF, "A01" if i % 2 else "A02") for i in range(n_spoof)]
    for i in range(int(round(with_recon * n_bona))):
        clips += [recon(f"b{i:04d}", m, method=m.split("-")[0]) for m in models]
    if recon_spoofs:
        clips += [recon(f"s{i:04d}", models[0]) for i in range(n_spoof)]
    return clips


def epoch(sampler: PairedBatchSampler, clips: list[Clip], e: int = 0) -> list[list[Clip]]:
    sampler.set_epoch(e)
    return [[clips[i] for i, _ in batch] for batch in sampler]


def pairing_share(batches: list[list[Clip]], clips: list[Clip]) -> float:
    """Share of drawn reconstructions of bona fide originals that sit in the batch of their own original."""
    bona = {c.utt_id for c in clips if c.label == BONAFIDE and c.kind == "original"}
    drawn = paired = 0
    for b in batches:
        ids = {c.utt_id for c in b}
        for c in b:
            if c.kind == "reconstruction" and c.source_id in bona:
                drawn += 1
                paired += c.source_id in ids
    return paired / drawn if drawn else 1.0


def kinds(batches: list[list[Clip]]) -> Counter:
    """Draws per (kind, attack, method)."""
    return Counter((c.kind, c.attack, c.method) for b in batches for c in b)


def test_dev_corpus_shape_draws_every_spoof_and_keeps_pairs():
    clips = shape(233, 233, recon_spoofs=True)  # the shape: one reconstruction of every clip
    sampler = PairedBatchSampler(clips, 16, seed=688)
    batches = epoch(sampler, clips)
    drawn = {c.utt_id for b in batches for c in b}
    assert all(f"s{i:04d}" in drawn for i in range(233)), "every corpus spoof, every epoch"
    assert all(f"s{i:04d}__gl" in drawn for i in range(233)), "every reconstruction of a spoof, every epoch"
    counts = kinds(batches)
    assert counts[("original", "A01", None)] >= 116 and counts[("original", "A02", None)] >= 117
    for b in batches:  # 8 bona fide, 4 of their own reconstructions, 4 other spoofs
        assert len(b) == 16 and sum(c.label == BONAFIDE for c in b) == 8
        own = [c for c in b if c.kind == "reconstruction" and c.source_id.startswith("b")]
        assert len(own) == 4 and {c.source_id for c in own} <= {c.utt_id for c in b}
    assert pairing_share(batches, clips) == 1.0
    assert sampler.epoch_stats()["paired_share"] == 1.0


def test_no_corpus_spoofs_fills_the_spoof_half_with_own_reconstructions():
    clips = shape(40, 0)
    sampler = PairedBatchSampler(clips, 8, seed=1)
    assert sampler.recon_share == 1.0
    batches = epoch(sampler, clips)
    assert {c.utt_id for b in batches for c in b if c.label == BONAFIDE} == {f"b{i:04d}" for i in range(40)}
    for b in batches:
        assert [c.kind for c in b].count("reconstruction") == 4
        assert {c.source_id for c in b if c.kind == "reconstruction"} <= {c.utt_id for c in b if c.kind == "original"}


def test_ten_times_more_spoofs_than_bonafide_cycles_the_bonafide():
    clips = shape(20, 200)
    sampler = PairedBatchSampler(clips, 8, seed=2)
    batches = epoch(sampler, clips)
    drawn = Counter(c.utt_id for b in batches for c in b)
    assert all(drawn[f"s{i:04d}"] >= 1 for i in range(200))
    assert all(drawn[f"b{i:04d}"] >= 1 for i in range(20))
    assert max(drawn[f"b{i:04d}"] for i in range(20)) - min(drawn[f"b{i:04d}"] for i in range(20)) <= 1
    assert all(sum(c.label == BONAFIDE for c in b) == 4 for b in batches)
    assert pairing_share(batches, clips) == 1.0


def test_three_methods_share_the_slots_evenly_whatever_the_manifest_order():
    models = ("codec-opus", "vocoder-gl", "diffusion-md")
    clips = shape(120, 120, models=models)
    counts = []
    for order_seed in (0, 1):
        shuffled = clips[:]
        random.Random(order_seed).shuffle(shuffled)
        sampler = PairedBatchSampler(shuffled, 16, seed=5)
        batches = epoch(sampler, shuffled)
        counts.append(Counter(variant_of(c) for b in batches for c in b if c.kind == "reconstruction"))
        assert pairing_share(batches, shuffled) == 1.0
        if order_seed == 0:
            first = [[c.utt_id for c in b] for b in batches]
        else:
            assert [[c.utt_id for c in b] for b in batches] == first, "manifest order changed the batches"
    assert counts[0] == counts[1]
    assert len(counts[0]) == 3 and max(counts[0].values()) - min(counts[0].values()) <= 1


def test_originals_without_reconstruction_and_orphans():
    clips = shape(60, 30, with_recon=0.5)
    clips += [recon(f"gone{i}") for i in range(7)]  # their originals are not in the training clips
    sampler = PairedBatchSampler(clips, 8, seed=3)
    assert sampler.orphans == 7 and "7 reconstruction(s) whose original is not in the training clips" in sampler.summary()
    batches = epoch(sampler, clips)
    drawn = {c.utt_id for b in batches for c in b}
    assert {f"gone{i}__gl" for i in range(7)} <= drawn, "orphans are other spoofs: drawn, not dropped"
    assert {f"b{i:04d}" for i in range(60)} <= drawn
    assert pairing_share(batches, clips) >= 0.95
    assert all(len(b) == 8 for b in batches)


def test_ddp_world_two_equal_shards_whose_union_is_the_single_process_epoch():
    clips = shape(50, 37, models=("a-x", "b-y"))
    single = PairedBatchSampler(clips, 6, seed=9, world_size=2)  # rank-less view: plan of all 2 x N batches
    ranks = [PairedBatchSampler(clips, 6, seed=9, rank=r, world_size=2) for r in (0, 1)]
    for e in (0, 1):
        shards = [list(epoch(s, clips, e)) for s in ranks]
        assert len(shards[0]) == len(shards[1]) == len(ranks[0])
        assert all(len(b) == 6 and sum(c.label == BONAFIDE for c in b) == 3 for sh in shards for b in sh)
        single.set_epoch(e)
        plan, _ = single._plan()
        merged = [b for pair in zip(*shards) for b in pair]
        assert [[c.utt_id for c in b] for b in merged] == [[clips[i].utt_id for i, _ in b] for b in plan]
        globals_ = [a + b for a, b in zip(*shards)]
        assert pairing_share(globals_, clips) == 1.0
        drawn = {c.utt_id for b in globals_ for c in b}
        assert {c.utt_id for c in clips if c.kind == "original"} <= drawn


def test_deterministic_per_seed_and_epoch():
    clips = shape(30, 30)
    a, b = PairedBatchSampler(clips, 8, seed=1), PairedBatchSampler(clips, 8, seed=1)
    assert list(a) == list(b)
    a.set_epoch(1)
    assert list(a) != list(b)
    assert list(PairedBatchSampler(clips, 8, seed=2)) != list(b)


def test_views_shared_by_an_original_and_its_own_reconstructions_only():
    clips = shape(16, 16, models=("a-x", "b-y"))
    for batch in PairedBatchSampler(clips, 8, seed=0):
        view_of = {clips[i].utt_id: v for i, v in batch}
        for i, v in batch:
            c = clips[i]
            if c.kind == "reconstruction":
                assert v == view_of[c.source_id]
        originals = [clips[i].utt_id for i, _ in batch if clips[i].kind == "original"]
        assert len(set(originals)) == len(originals), "no clip twice in one batch"
        assert len({v for i, v in batch if clips[i].kind == "original"}) == len(originals)


def test_bad_arguments():
    with pytest.raises(UsageError, match="no bona fide"):
        PairedBatchSampler([original("s", SPOOF)], 2)
    with pytest.raises(UsageError, match="no spoof"):
        PairedBatchSampler([original("b", BONAFIDE)], 2)
    with pytest.raises(UsageError, match="too small"):
        PairedBatchSampler(shape(2, 2), 1)
    with pytest.raises(UsageError, match="recon-share"):
        PairedBatchSampler(shape(2, 2), 4, recon_share=1.5)


def test_recon_share_splits_the_spoof_half():
    clips = shape(64, 64)
    for share, own in ((0.0, 0), (0.25, 2), (0.5, 4), (1.0, 7)):  # 1.0 keeps one slot for corpus spoofs
        batches = epoch(PairedBatchSampler(clips, 16, seed=0, recon_share=share), clips)
        assert {sum(c.kind == "reconstruction" for c in b) for b in batches} == {own}
        assert {f"s{i:04d}" for i in range(64)} <= {c.utt_id for b in batches for c in b}


@settings(max_examples=60, deadline=None)
@given(n_bona=st.integers(1, 40), n_spoof=st.integers(0, 60), n_models=st.integers(0, 3),
       with_recon=st.floats(0, 1), recon_spoofs=st.booleans(), batch=st.integers(2, 12), world=st.integers(1, 3),
       share=st.one_of(st.none(), st.floats(0, 1)), seed=st.integers(0, 2**16))
def test_property_every_clip_pool_is_covered(n_bona, n_spoof, n_models, with_recon, recon_spoofs, batch, world,
                                             share, seed):
    models = tuple(f"m{k}-v" for k in range(n_models)) or ("m0-v",)
    clips = shape(n_bona, n_spoof, models, recon_spoofs and n_spoof > 0, with_recon if n_models else 0.0)
    if not any(c.label == SPOOF for c in clips):
        with pytest.raises(UsageError):
            PairedBatchSampler(clips, batch, seed, 0, world, share)
        return
    shards = [PairedBatchSampler(clips, batch, seed, r, world, share) for r in range(world)]
    per_rank = [list(epoch(s, clips)) for s in shards]
    assert len({len(p) for p in per_rank}) == 1
    globals_ = [sum(parts, []) for parts in zip(*per_rank)]
    for g in globals_:
        assert len(g) == batch * world and sum(c.label == BONAFIDE for c in g) == (batch // 2) * world
    drawn = {c.utt_id for g in globals_ for c in g}
    assert {c.utt_id for c in clips if c.label == BONAFIDE} <= drawn
    assert {c.utt_id for c in clips if c.kind == "original"} <= drawn, "every corpus spoof, every epoch"
    stats = shards[0].epoch_stats()
    assert stats["paired_share"] == pytest.approx(pairing_share(globals_, clips))
    if any(c.kind == "original" and c.label == SPOOF for c in clips) or with_recon == 1.0:
        assert pairing_share(globals_, clips) == 1.0  # unpaired only when a batch had nothing else to add

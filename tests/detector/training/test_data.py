from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from detector.training.data import BONAFIDE, SPOOF, Clip, ClipDataset, assign_splits, collate, fix_length, load_clips, windows
from detector.training.sampler import PairedBatchSampler


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


def test_fix_length_and_windows():
    x = np.arange(5, dtype=np.float32)
    assert fix_length(x, 12).tolist() == [0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1]
    assert fix_length(np.arange(10.0), 4, offset=3).tolist() == [3, 4, 5, 6]
    w = windows(np.arange(10.0), 4)
    assert w.shape == (3, 4) and w[-1].tolist() == [6, 7, 8, 9]
    assert windows(x, 8).shape == (1, 8)


def test_dataset_pads_unreadable_and_masks_it(manifest: Path, tmp_path: Path):
    clips = list(load_clips([manifest]))  # a table of columns; a list to change one clip
    bad = tmp_path / "bad.flac"
    bad.write_bytes(b"not audio")
    clips[0] = replace(clips[0], path=str(bad))
    ds = ClipDataset(clips, crop=4000, train=True, seed=0)
    batch = collate([ds[0], ds[1], ds[2]])
    assert batch["wav"].shape == (3, 4000), "the batch keeps its size (DDP all-gathers equal shapes)"
    assert batch["valid"].tolist() == [False, True, True] and batch["failed"][0][0] == 0
    assert torch.equal(batch["wav"][0], batch["wav"][1]), "padding is a readable row, masked out of the loss"
    assert np.array_equal(ds[1]["wav"].numpy(), ds[1]["wav"].numpy())  # deterministic per (seed, epoch, view)


def test_original_and_identity_reconstruction_get_identical_crops(tmp_path: Path):
    """Same source, same view: the same crop window and the same augmentation draw."""
    import shutil

    import soundfile as sf
    from detector.training.augment import Augmenter
    from tests.conftest import speechlike

    sf.write(tmp_path / "a.flac", speechlike(3.0, seed=1), 16000)
    shutil.copy(tmp_path / "a.flac", tmp_path / "a_rec.flac")  # an identity "reconstruction"
    sf.write(tmp_path / "s.flac", speechlike(3.0, seed=2), 16000)
    a = Clip("a", str(tmp_path / "a.flac"), 1, "original", "a", None, None, "-", None, "train")
    r = Clip("a__id", str(tmp_path / "a_rec.flac"), 0, "reconstruction", "a", "codec", "identity", "identity", None, "train")
    s = Clip("s", str(tmp_path / "s.flac"), 0, "original", "s", None, None, "A01", None, "train")
    ds = ClipDataset([a, r, s], crop=8000, train=True, augment=Augmenter(p=1.0, use_rawboost=True), seed=688)
    for epoch in range(3):
        ds.epoch = epoch
        for view in (0, 7):
            assert torch.equal(ds[(0, view)]["wav"], ds[(1, view)]["wav"])
        assert not torch.equal(ds[(0, 0)]["wav"], ds[(0, 7)]["wav"]), "another view is another crop/augmentation"
    paired = 0
    for e in range(4):  # through the sampler: the drawn reconstruction's crop is its original's
        sampler = PairedBatchSampler([a, r, s], 4, seed=e, recon_share=0.5)
        ds.epoch = e
        for batch in sampler:
            wavs = {(ds.clips[i].utt_id, v): ds[(i, v)]["wav"] for i, v in batch}
            for (uid, v), w in wavs.items():
                if uid == "a__id":
                    assert torch.equal(w, wavs[("a", v)])
                    paired += 1
    assert paired


def test_augmentation_bank_draws_from_every_subfolder(tmp_path: Path):
    """1,000 tiny noise files in 10 subfolders (sorted, the first 200 would be two of them): draws reach
    files of every subfolder, loaded lazily through a bounded cache."""
    import soundfile as sf
    from detector.training.augment import Augmenter, Bank

    for k in range(1000):  # file k holds the constant (k + 1) / 2048, so a draw says which file it was
        f = tmp_path / "noise" / f"sub{k // 100}" / f"n{k:04d}.wav"
        f.parent.mkdir(parents=True, exist_ok=True)
        sf.write(f, np.full(160, (k + 1) / 2048, dtype=np.float32), 16000, subtype="FLOAT")
    bank = Bank(str(tmp_path / "noise"), 16000, cache_size=16)
    assert len(bank) == 1000
    drawn = [int(round(bank.draw(np.random.default_rng([688, i]))[0] * 2048)) - 1 for i in range(2000)]
    assert {k // 100 for k in drawn} == set(range(10))
    assert len(set(drawn)) > 800 and len(bank._cache) <= 16
    aug = Augmenter(noise_dir=str(tmp_path / "noise"), p=1.0, cache_size=16)
    x = np.sin(np.arange(4000) / 7).astype(np.float32) * 0.3
    outs = [aug(x, np.random.default_rng(k)) for k in range(50)]
    assert len(aug.noises._cache) <= 16 and all(o.shape == x.shape and np.isfinite(o).all() for o in outs)

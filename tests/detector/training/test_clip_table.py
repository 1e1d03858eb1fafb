"""The trainer's clip table holds columns, not one Python object per row (issue 29, case 8): what the
driver keeps of a manifest before the first batch (clips, splits, sampler pools) is measured in Python
allocations per row, and the columnar functions give what the per-clip ones gave."""
import sys
import tracemalloc
from pathlib import Path

import numpy as np

from detector.config import RunConfig
from detector.training import loop
from detector.training.clips import Clip, Clips
from detector.training.data import assign_splits, hold_out, load_clips
from detector.training.sampler import PairedBatchSampler

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))
from bench_train_rows import write_manifest  # noqa: E402

ROWS = 20_000


def test_the_driver_keeps_a_few_bytes_of_python_objects_per_row(tmp_path):
    manifest = str(write_manifest(tmp_path / "big", ROWS))
    cfg = RunConfig().replace("data", batch_size=4)
    PairedBatchSampler(loop.split_clips([str(write_manifest(tmp_path / "small", 200))], cfg)[0], 4)  # lazy imports
    tracemalloc.start()
    try:
        train, dev, _ = loop.split_clips([manifest], cfg)
        sampler = PairedBatchSampler(train, 4)
        kept, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert isinstance(train, Clips) and len(train) + len(dev) == ROWS
    # with one Clip object per row (cd671ba): 769 bytes kept and 1,730 at the peak per row; columns: 21 and 162
    assert kept / ROWS < 150, f"{kept / ROWS:.0f} bytes of Python objects kept per row"
    assert peak / ROWS < 600, f"{peak / ROWS:.0f} bytes of Python objects at the peak per row"
    assert sampler.n_recons == ROWS // 2 - sum(c.kind == "reconstruction" for c in dev)


def _mixed() -> list[Clip]:
    def clip(uid, label, kind="original", source=None, attack="-", speaker=None, split=None, method=None):
        return Clip(uid, f"/a/{uid}.wav", label, kind, source or uid, method, method and f"m-{method}", attack,
                    speaker, split)

    return [clip("b1", 1, speaker="s1"), clip("b2", 1, speaker="s2"), clip("x1", 0, attack="A01", speaker="s1"),
            clip("x2", 0, attack="A02", speaker="s3"), clip("b1__c", 0, "reconstruction", "b1", method="codec"),
            clip("x2__c", 0, "reconstruction", "x2", method="codec"), clip("o__c", 0, "reconstruction", "gone",
                                                                          method="codec", split="eval")]


def test_columnar_splits_and_holdout_equal_the_per_clip_rules():
    clips = _mixed()
    out = assign_splits(clips, dev_fraction=0.5)
    by_id = {c.utt_id: c for c in out}
    assert by_id["b1__c"].split == by_id["b1"].split and by_id["x2__c"].split == by_id["x2"].split
    assert by_id["b1"].split == by_id["x1"].split  # one speaker, one split
    assert by_id["o__c"].split in ("train", "dev")  # hashed splits: an orphan gets the hash split
    kept, dropped = hold_out(clips, ["A02"])
    assert [c.utt_id for c in kept] == ["b1", "b2", "x1", "b1__c", "o__c"] and dropped == 2
    table = Clips.of(clips)
    assert list(table) == clips and table[4] == clips[4] and list(table[1:3]) == clips[1:3]
    assert np.array_equal(table.labels(), [c.label for c in clips])


def test_load_clips_keeps_the_label_policy_and_fills(manifest):
    clips = load_clips([manifest], bonafide_methods=["vocoder"], require_both=False)
    assert all(c.label == 1 for c in clips if c.kind == "reconstruction")
    assert all(c.attack for c in clips) and all(c.source_id for c in clips)


def test_paths_stored_as_folder_and_name_come_back_whole():
    paths = ["/data/LA/flac/LA_T_1.flac", "rel/x.wav", "bare.wav", "s3://bucket/k/y.flac", "/root.wav", "", None,
             "dir/"]
    clips = [Clip(f"u{i}", p, i % 2, "original", f"u{i}", None, None, "-", None, "train") for i, p in enumerate(paths)]
    table = Clips.of(clips)
    assert list(table) == clips and [table[i] for i in range(len(clips))] == clips
    assert table.strings("path").to_pylist() == paths
    assert list(table.take([6, 0, 3])) == [clips[6], clips[0], clips[3]]
    assert list(table.filter(np.arange(len(clips)) % 2 == 0)) == clips[::2]
    moved = table.with_column("path", [f"/new/{i}.wav" for i in range(len(clips))])
    assert [c.path for c in moved] == [f"/new/{i}.wav" for i in range(len(clips))]
    assert [c.utt_id for c in moved.with_column("split", ["dev"] * len(clips))] == [c.utt_id for c in clips]

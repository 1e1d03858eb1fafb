import datetime as dt
import os
import re

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import manifests
from manifests.errors import UsageError
from manifests.schema import SCHEMA, SCHEMA_VERSION, VERSION_KEY


def _row(utt, path, status="ok", when=0, **kw):
    r = manifests.empty_row()
    r.update(utt_id=utt, path=path, label="bonafide", kind="original", source_id=utt, attack="-",
             status=status, created_at=dt.datetime(2026, 1, 1, 0, 0, when, tzinfo=dt.timezone.utc), **kw)
    return r


def test_round_trip_keeps_every_column_and_relative_paths(tmp_path):
    audio = tmp_path / "audio" / "a.flac"
    dest = tmp_path / "m" / "manifest.parquet"
    manifests.write([_row("a", str(audio), sample_rate=16000, num_samples=10, duration_s=0.5)], dest)
    raw = pq.read_table(dest)
    assert raw.schema.metadata[VERSION_KEY] == SCHEMA_VERSION.encode()
    assert raw["path"][0].as_py() == "../audio/a.flac"  # stored relative to the manifest folder
    back = manifests.read(dest)
    assert back.schema.equals(SCHEMA, check_metadata=False)
    row = back.to_pylist()[0]
    assert row["path"] == str(audio) and row["sample_rate"] == 16000 and row["duration_s"] == 0.5


def test_folder_of_parts_dedupes_ok_over_failed_then_newest(tmp_path):
    folder = tmp_path / "manifest"
    manifests.write_part([_row("a", "/x/a.wav", "ok", 1), _row("b", "/x/b.wav", "failed", 1)], folder, "p1")
    manifests.write_part([_row("a", "/x/a.wav", "failed", 5), _row("b", "/x/b.wav", "ok", 2),
                          _row("c", "/x/c.wav", "ok", 3)], folder, "p2")
    table = manifests.read(folder)
    got = {r["utt_id"]: r["status"] for r in table.to_pylist()}
    assert got == {"a": "ok", "b": "ok", "c": "ok"}
    merged = manifests.compact(folder)
    assert [os.path.basename(p) for p in manifests.part_files(folder)] == [os.path.basename(merged)]
    assert re.fullmatch(r"manifest-[0-9a-f]{12}\.parquet", os.path.basename(merged))
    assert {r["utt_id"]: r["status"] for r in manifests.read(folder).to_pylist()} == got
    stored = pq.read_table(merged).to_pylist()  # the file itself holds one row per utt_id: the winner
    assert sorted((r["utt_id"], r["status"], r["created_at"].second) for r in stored) == \
        [("a", "ok", 1), ("b", "ok", 2), ("c", "ok", 3)]


def test_validate_names_missing_and_mistyped_columns(tmp_path):
    bad = pa.table({"utt_id": ["a"], "path": ["a.wav"], "label": ["bonafide"], "seed": ["not-an-int"]})
    bad = bad.replace_schema_metadata({VERSION_KEY: b"1.0"})
    pq.write_table(bad, tmp_path / "bad.parquet")
    with pytest.raises(UsageError) as e:
        manifests.validate(tmp_path / "bad.parquet")
    msg = str(e.value)
    for col in ("kind", "source_id", "attack", "status"):
        assert col in msg
    assert "seed has type string, expected int64" in msg


def test_newer_major_version_is_refused(tmp_path):
    table = manifests.to_table([_row("a", "a.wav")]).replace_schema_metadata({VERSION_KEY: b"2.0"})
    pq.write_table(table, tmp_path / "v2.parquet")
    with pytest.raises(UsageError, match="schema version 2.0"):
        manifests.read(tmp_path / "v2.parquet")


def test_missing_manifest_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="manifest not found"):
        manifests.read(tmp_path / "nope.parquet")


def test_write_refuses_null_required_column(tmp_path):
    row = _row("a", "a.wav")
    row["label"] = None
    with pytest.raises(UsageError, match="label"):
        manifests.write([row], tmp_path / "m.parquet")
    assert not list(tmp_path.iterdir())  # nothing half-written

"""Locations on local disk and in object stores (local S3 and GCS emulators, no cloud)."""
import hashlib
import os

import numpy as np
import pyarrow.parquet as pq
import pytest

import manifests
from manifests import storage
from manifests.audio import AudioError, describe, load_audio, save_audio
from manifests.corpus import import_corpus
from manifests.errors import UsageError

from ..conftest import speechlike, upload, write_corpus


def test_uri_arithmetic():
    assert storage.join("s3://b/run/manifest", "../audio/x.flac") == "s3://b/run/audio/x.flac"
    assert storage.join("s3://b/run", "gs://c/y") == "gs://c/y"  # an absolute part replaces the base
    assert storage.join("s3://b/run", "../../../y") == "s3://b/y"  # '..' never leaves the bucket
    assert storage.join("/data/run", "a", "../b.flac") == "/data/run/b.flac"
    assert storage.normalize("S3://b//x/./y/") == "s3://b/x/y"
    assert storage.normalize("file:///tmp/x/../y") == "/tmp/y"
    assert storage.relative("s3://b/run/audio/x.flac", "s3://b/run/manifest") == "../audio/x.flac"
    assert storage.relative("s3://other/x.flac", "s3://b/run") == "s3://other/x.flac"
    assert storage.relative("/local/x.flac", "s3://b/run") == "/local/x.flac"
    assert storage.parent("gs://b/a/x.flac") == "gs://b/a" and storage.parent("gs://b") == "gs://b"
    assert storage.name("gs://b/a/x.FLAC") == "x.FLAC" and storage.suffix("gs://b/a/x.FLAC") == ".flac"
    assert storage.is_within("s3://b/c/d.wav", "s3://b/c") and not storage.is_within("s3://b/cd.wav", "s3://b/c")
    assert not storage.is_within("s3://b2/c/d.wav", "s3://b/c")
    assert storage.common_parent(["s3://b/c/x/1.wav", "s3://b/c/y/2.wav"]) == "s3://b/c"
    assert storage.common_parent(["s3://b/1.wav", "s3://b/2.wav"]) == "s3://b"


@pytest.mark.parametrize("bad,match", [
    ("s3://", "needs a bucket"),
    ("s3://b/x?endpoint_override=h:1", "query strings are not supported"),
])
def test_malformed_uri_is_a_usage_error(bad, match):
    with pytest.raises(UsageError, match=match):
        storage.normalize(bad)


def test_corpus_across_buckets_is_refused():
    with pytest.raises(UsageError, match="span 2 filesystems"):
        storage.common_parent(["s3://a/x.wav", "s3://b/y.wav"])


def test_manifest_in_bucket_stores_relative_paths_and_compacts(bucket):
    folder = f"{bucket}/run/manifest"
    row = dict(manifests.empty_row(), label="bonafide", kind="original", status="ok", attack="-")
    manifests.write_part([dict(row, utt_id="a", source_id="a", path=f"{bucket}/run/audio/a.flac"),
                          dict(row, utt_id="c", source_id="c", path="/elsewhere/c.flac")], folder, "p1")
    manifests.write_part([dict(row, utt_id="b", source_id="b", path=f"{bucket}/corpus/b.flac")], folder, "p2")
    assert [storage.name(p) for p in manifests.part_files(folder)] == ["p1.parquet", "p2.parquet"]
    assert manifests.validate(folder) == 3
    raw = pq.read_table(storage.readable(f"{folder}/p1.parquet"))["path"].to_pylist()
    assert raw == ["../audio/a.flac", "/elsewhere/c.flac"]  # same bucket: relative; elsewhere: absolute
    merged = manifests.compact(folder)
    assert [storage.name(p) for p in manifests.part_files(folder)] == [storage.name(merged)]
    paths = dict(zip(*manifests.read(folder, columns=["utt_id", "path"]).to_pydict().values()))
    assert paths == {"a": f"{bucket}/run/audio/a.flac", "b": f"{bucket}/corpus/b.flac", "c": "/elsewhere/c.flac"}


def test_audio_in_bucket_round_trips_like_local(bucket, tmp_path):
    wav = speechlike(0.5)
    uri = save_audio(f"{bucket}/a/x.flac", wav, 16000)
    local = save_audio(tmp_path / "x.flac", wav, 16000)
    got, sr = load_audio(uri)
    want, _ = load_audio(local)
    assert sr == 16000 and np.array_equal(got, want)
    info = describe(uri)
    assert info["num_samples"] == wav.size and info["sha256"] == hashlib.sha256(storage.read_bytes(uri)).hexdigest()
    assert storage.entries(f"{bucket}/a") == [(f"{bucket}/a/x.flac", "file")]  # no temp object left behind
    with pytest.raises(AudioError, match="not a readable file"):
        load_audio(f"{bucket}/a/missing.flac")


def test_corpus_imports_from_bucket_as_from_disk(bucket, tmp_path):
    local = write_corpus(tmp_path / "corpus")
    upload(local, f"{bucket}/corpus")
    remote = import_corpus(f"{bucket}/corpus")
    here = import_corpus(local)
    strip = ("path", "created_at", "file_mtime_ns")  # the same bytes, uploaded later
    assert [{k: v for k, v in r.items() if k not in strip} for r in remote] == \
           [{k: v for k, v in r.items() if k not in strip} for r in here]
    assert all(r["path"].startswith(f"{bucket}/corpus/") and r["status"] == "ok" for r in remote)
    os.remove(local / "protocol.csv")  # without protocol.csv: a plain folder of bona fide audio
    upload(local, f"{bucket}/folder")
    assert sorted(r["utt_id"] for r in import_corpus(f"{bucket}/folder")) == sorted(r["utt_id"] for r in here)


def test_protocol_in_bucket_cannot_escape_its_root(bucket, tmp_path):
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "protocol.csv").write_text("path,label\n../../other/x.flac,bonafide\n")
    upload(tmp_path / "c", f"{bucket}/c")
    with pytest.raises(UsageError, match="outside the corpus root"):
        import_corpus(f"{bucket}/c")


def test_missing_corpus_in_a_bucket_is_a_usage_error(bucket):
    with pytest.raises(UsageError, match="corpus not found"):
        import_corpus(f"{bucket}/nothing-here")

"""`manifests export --format hf`, read back by the real `datasets` library and by `interop.read_hf_folder`."""
from __future__ import annotations

import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import manifests
from manifests.cli import main
from manifests.export_hf import export_hf, hf_features, hf_schema, parse_size
from manifests.interop import is_cutset, is_hf_folder, read_hf_folder

from .exportable import exportable_manifest, ok_rows

datasets = pytest.importorskip("datasets")
SHARD = re.compile(r"^(train|validation|test)-(\d{5})-of-(\d{5})\.parquet$")


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    return exportable_manifest(tmp_path / "src", n_bonafide=6, n_spoof=4)


def load(out: Path, **kw):
    """datasets.load_dataset with a cache of the test's own (its cache key of a local folder is its name and
    the files' mtimes: a shared cache could serve another test's folder of the same name)."""
    return datasets.load_dataset(str(out), cache_dir=str(out.parent / "hf-cache"), **kw)


def test_load_dataset_restores_audio_and_every_column(manifest, tmp_path):
    out = tmp_path / "hf"
    report = export_hf(manifest, out)
    ds = load(out)
    want = ok_rows(manifest)
    assert set(ds) == {"train", "validation"}  # manifest dev -> datasets' validation
    assert sum(ds[s].num_rows for s in ds) == len(want) == sum(report["splits"].values())
    for split in ds:
        assert isinstance(ds[split].features["audio"], datasets.Audio)  # restored from the metadata, no cast
        assert list(ds[split].features) == ["audio", *manifests.COLUMN_NAMES]
        raw = ds[split].cast_column("audio", datasets.Audio(decode=False))
        for row in raw:
            src = want[row["utt_id"]]
            assert row["audio"]["bytes"] == Path(src["path"]).read_bytes()  # the file's own bytes
            assert row["path"] == row["utt_id"] + ".flac" and row["audio"]["path"] == Path(row["path"]).name
            for col in ("label", "kind", "source_id", "method", "model", "params", "seed", "attack", "split",
                        "sha256", "num_samples", "snr_db", "lsd_db", "created_at", "run_id"):
                assert row[col] == src[col], col
            # a reconstruction without a split of its own is exported in its source's split
            source_split = want[src["source_id"]]["split"]
            assert {"train": "train", "dev": "validation"}[source_split] == split
    assert "broken" not in {u for s in ds for u in ds[s]["utt_id"]}  # failed rows have no audio


def test_layout_and_metadata_follow_datasets(manifest, tmp_path):
    out = tmp_path / "hf"
    export_hf(manifest, out)
    files = sorted(p.name for p in (out / "data").iterdir())
    assert files and all(SHARD.match(f) for f in files), files
    assert "configs:" in (out / "README.md").read_text() and "path: data/train-*" in (out / "README.md").read_text()
    schema = pq.read_schema(out / "data" / files[0])
    assert datasets.Features.from_arrow_schema(schema).to_dict() == hf_features()
    assert datasets.Features.from_dict(hf_features()).arrow_schema.equals(hf_schema(), check_metadata=False)
    streamed = load(out, split="train", streaming=True)
    assert isinstance(streamed.features["audio"], datasets.Audio)
    first = next(iter(streamed.cast_column("audio", datasets.Audio(decode=False))))  # decoding needs torchcodec
    assert first["audio"]["bytes"][:4] == b"fLaC" and first["utt_id"]


def test_push_to_hub_embeds_nothing_new(manifest, tmp_path):
    """push_to_hub runs `embed_table_storage` over each shard before upload: already embedded bytes pass unchanged."""
    from datasets.table import embed_table_storage

    out = tmp_path / "hf"
    export_hf(manifest, out)
    ds = load(out, split="train")
    embedded = embed_table_storage(ds.data.table)
    assert embedded.column("audio").to_pylist() == ds.data.table.column("audio").to_pylist()


def test_several_shards_of_bounded_size(manifest, tmp_path):
    """Bounded memory by construction: with a small budget the writer makes several shards, each within the
    budget (or a single clip above it), and never buffers more than one row group's budget plus one clip."""
    out = tmp_path / "hf"
    sizes = [Path(r["path"]).stat().st_size for r in ok_rows(manifest).values()]
    budget = 2 * max(sizes) + 2048
    report = export_hf(manifest, out, max_shard_bytes=budget, row_group_bytes=max(sizes) + 1024)
    shards = sorted((out / "data").glob("train-*.parquet"))
    n = len(shards)
    assert n >= 3 and [s.name for s in shards] == [f"train-{k:05d}-of-{n:05d}.parquet" for k in range(n)]
    for s in shards:
        pf = pq.ParquetFile(s)
        audio = pf.read(columns=["audio"])["audio"].combine_chunks().field("bytes").to_pylist()
        assert sum(map(len, audio)) <= budget or len(audio) == 1
        for g in range(pf.metadata.num_row_groups):
            group = pf.read_row_group(g, columns=["audio"])["audio"].combine_chunks().field("bytes").to_pylist()
            assert sum(map(len, group)) <= max(sizes) + 1024 or len(group) == 1
    assert max(sizes) <= report["peak_buffered_bytes"] <= 2 * max(sizes) + 1024 + 2 * 600
    assert len(load(out, split="train")) == report["splits"]["train"]


def test_round_trip_through_read_hf_folder(manifest, tmp_path):
    out = tmp_path / "hf"
    export_hf(manifest, out)
    assert is_hf_folder(out) and not is_hf_folder(manifest) and not is_cutset(out)
    rows = read_hf_folder(out)
    want = ok_rows(manifest)
    assert {r["utt_id"] for r in rows} == set(want)
    audio_dir = tmp_path / "hf-audio"  # beside the dataset, never inside it
    for r in rows:
        src = want[r["utt_id"]]
        assert r["status"] == "ok" and Path(r["path"]).is_relative_to(audio_dir)
        assert Path(r["path"]).read_bytes() == Path(src["path"]).read_bytes()
        for col in ("label", "kind", "source_id", "method", "model", "attack", "split", "speaker", "sha256", "seed"):
            assert r[col] == src[col], col
    mtimes = {r["path"]: Path(r["path"]).stat().st_mtime_ns for r in rows}
    again = read_hf_folder(out)  # written once: an unchanged file is not rewritten
    assert {r["path"]: Path(r["path"]).stat().st_mtime_ns for r in again} == mtimes
    assert [r["utt_id"] for r in read_hf_folder(out, originals_only=True)] == \
        [r["utt_id"] for r in rows if r["kind"] == "original"]
    named = read_hf_folder(out, audio_dir=tmp_path / "elsewhere")
    assert all(Path(r["path"]).is_relative_to(tmp_path / "elsewhere") for r in named)
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "data"]  # the dataset folder is untouched


def test_generic_dataset_with_classlabel(tmp_path):
    """A dataset made by datasets itself: ClassLabel labels, no utt_id column, split from the file name."""
    from tests.conftest import speechlike
    import io
    import soundfile as sf

    def flac(seed):
        buf = io.BytesIO()
        sf.write(buf, speechlike(0.5, seed=seed), 16000, format="FLAC")
        return buf.getvalue()

    raw = {"bytes": datasets.Value("binary"), "path": datasets.Value("string")}  # encoding Audio would need torchcodec
    feats = datasets.Features({"audio": raw, "label": datasets.ClassLabel(names=["spoof", "bonafide"]),
                               "speaker_id": datasets.Value("string")})
    ds = datasets.Dataset.from_dict({"audio": [{"bytes": flac(k), "path": f"clip{k}.flac"} for k in range(3)],
                                     "label": [1, 0, 1], "speaker_id": ["a", "b", "a"]}, features=feats)
    ds = ds.cast_column("audio", datasets.Audio())
    (tmp_path / "ds" / "data").mkdir(parents=True)
    ds.to_parquet(str(tmp_path / "ds" / "data" / "test-00000-of-00001.parquet"))
    rows = read_hf_folder(tmp_path / "ds", audio_dir=tmp_path / "audio")
    assert [(r["utt_id"], r["label"], r["speaker"], r["split"], r["kind"]) for r in rows] == [
        ("clip0", "bonafide", "a", "eval", "original"), ("clip1", "spoof", "b", "eval", "original"),
        ("clip2", "bonafide", "a", "eval", "original")]
    assert all(r["status"] == "ok" and r["attack"] == ("-" if r["label"] == "bonafide" else "unknown") for r in rows)


def test_cli_export_and_its_errors(manifest, tmp_path):
    run = lambda *a: CliRunner().invoke(main, [str(x) for x in a])  # noqa: E731
    out = tmp_path / "hf"
    r = run("export", "--format", "hf", "--manifest", manifest, "--out", out, "--max-shard-size", "64kB")
    assert r.exit_code == 0 and "clips (train" in r.output, r.output
    r = run("export", "--format", "hf", "--manifest", manifest, "--out", out)
    assert r.exit_code == 2 and "not empty" in r.output
    r = run("export", "--format", "hf", "--manifest", manifest, "--out", out, "--overwrite")
    assert r.exit_code == 0 and sorted(p.name for p in (out / "data").iterdir()) == [
        "train-00000-of-00001.parquet", "validation-00000-of-00001.parquet"]  # the 64kB shards are gone
    r = run("export", "--format", "hf", "--manifest", manifest, "--out", tmp_path / "x", "--max-shard-size", "lots")
    assert r.exit_code == 2 and "lots" in r.output
    assert parse_size("500MB") == 500 * 10**6 and parse_size("64MiB") == 64 << 20 and parse_size("1000") == 1000


def test_a_datasets_folder_is_a_corpus(manifest, tmp_path):
    """`manifests import` and `reconstruct run --corpus` accept an exported datasets folder as they are."""
    from click.testing import CliRunner

    from manifests.corpus import import_corpus, list_corpus
    from reconstruct.cli import main

    out = tmp_path / "hf"
    export_hf(manifest, out)
    want = ok_rows(manifest)
    rows = import_corpus(out)
    assert {r["utt_id"]: (r["kind"], r["source_id"], r["sha256"]) for r in rows} == \
        {u: (w["kind"], w["source_id"], w["sha256"]) for u, w in want.items()}
    originals = sorted(u for u, w in want.items() if w["kind"] == "original")
    assert sorted(list_corpus(out)["utt_id"].to_pylist()) == originals  # a run plans from the originals only
    res = CliRunner().invoke(main, ["run", "--corpus", str(out), "--method", "codec", "--model", "opus",
                                    "--out", str(tmp_path / "run"), "--executor", "local"])
    assert res.exit_code == 0, res.output
    made = manifests.read(tmp_path / "run" / "manifest").to_pylist()
    assert sorted(r["source_id"] for r in made if r["kind"] == "reconstruction") == originals

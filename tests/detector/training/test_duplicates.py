"""`detector train` refuses the rows `manifests validate` refuses (issue 29, case 2): an utt_id listed again
under another label, kind or source_id is one line and exit 2; the same rows listed again are merged and counted."""
from pathlib import Path

import pytest
from click.testing import CliRunner

import manifests
from detector.cli import main
from detector.training.data import load_clips

TINY = ["--frontend", "tiny", "--backend", "linear", "--tiny-hidden", "16", "--crop", "8000", "--batch-size", "2",
        "--epochs", "1", "--max-steps", "1", "--no-augment", "--no-progress"]


def _train(tmp_path: Path, *manifest_args) -> object:
    args = ["train", *manifest_args, "--out", str(tmp_path / "run"), *TINY]
    return CliRunner().invoke(main, [str(a) for a in args])


def _one_line_exit_2(r, *needles):
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    assert len(r.output.strip().splitlines()) == 1 and all(n in r.output for n in needles), r.output


def _relabelled(manifest: Path) -> tuple[list[dict], list[dict]]:
    """(rows, the bona fide originals relabelled spoof)."""
    rows = manifests.read(manifest).to_pylist()
    flipped = [dict(r, label="spoof") for r in rows if r["kind"] == "original" and r["label"] == "bonafide"]
    return rows, flipped


def test_a_second_manifest_relabelling_originals_is_refused(manifest: Path, tmp_path: Path):
    rows, flipped = _relabelled(manifest)
    other = manifests.write(flipped, tmp_path / "relabel.parquet")
    r = _train(tmp_path, "--manifest", manifest, "--manifest", other)
    _one_line_exit_2(r, f"{len(flipped)} utt_id(s) in several rows with a different label", "e.g. ")
    assert any(repr(f["utt_id"]) in r.output for f in flipped), r.output  # the first id it found
    assert not (tmp_path / "run" / "last").exists()


def test_two_parts_of_one_folder_disagreeing_are_refused(manifest: Path, tmp_path: Path):
    rows, flipped = _relabelled(manifest)
    folder = tmp_path / "parts"
    folder.mkdir()
    manifests.write_part(rows, folder, "a")
    manifests.write_part(flipped, folder, "b")
    r = _train(tmp_path, "--manifest", folder)
    _one_line_exit_2(r, f"{len(flipped)} utt_id(s) in several rows with a different label", "a.parquet, b.parquet")


def test_other_validate_problems_are_refused_too(manifest: Path, tmp_path: Path):
    rows = manifests.read(manifest).to_pylist()
    negative = [dict(r, duration_s=-1.0) if i == 0 else r for i, r in enumerate(rows)]
    bad = manifests.write(negative, tmp_path / "neg.parquet")
    _one_line_exit_2(_train(tmp_path, "--manifest", bad), "1 row(s) with duration_s negative")


def test_identical_rows_in_two_manifests_are_merged_and_counted(manifest: Path, tmp_path: Path):
    rows = manifests.read(manifest).to_pylist()
    again = manifests.write(rows[:3], tmp_path / "again.parquet")
    assert len(load_clips([manifest, again])) == len(load_clips([manifest]))
    r = _train(tmp_path, "--manifest", manifest, "--manifest", again)
    assert r.exit_code == 0, r.output
    assert "3 utt_id(s) listed again in a later manifest with the same label, kind and source_id: merged" in r.output


@pytest.mark.parametrize("field", ["kind", "source_id"])
def test_another_kind_or_source_is_a_conflict(manifest: Path, tmp_path: Path, field):
    rows = manifests.read(manifest).to_pylist()
    rec = next(r for r in rows if r["kind"] == "reconstruction")
    changed = dict(rec, **({"kind": "original", "source_id": rec["utt_id"]} if field == "kind" else {"source_id": "x"}))
    other = manifests.write([changed], tmp_path / "changed.parquet")
    _one_line_exit_2(_train(tmp_path, "--manifest", manifest, "--manifest", other),
                     "1 utt_id(s) in several rows with a different", repr(rec["utt_id"]))

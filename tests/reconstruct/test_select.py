"""`reconstruct run --select COLUMN=VALUE`: only the matching corpus clips (AND over selections), at the
output paths a whole-corpus run gives them, so a later run over more of the corpus resumes them."""
from __future__ import annotations

import pyarrow as pa
import pytest
from click.testing import CliRunner

import manifests
from manifests.errors import UsageError
from manifests.select import parse_select, select_rows
from reconstruct.cli import main


def _run(out, *extra):
    args = ["run", "--model", "opus", "--corpus", "demo", "--out", str(out), "--executor", "local", *extra]
    return CliRunner().invoke(main, args)


def test_select_is_and_over_columns_or_within_one():
    table = pa.table({"utt_id": ["a", "b", "c", "d"], "label": ["bonafide", "spoof", "bonafide", "bonafide"],
                      "split": ["train", "train", "dev", "eval"]}).combine_chunks()
    table = table.set_column(1, "label", table["label"].dictionary_encode())  # listings dictionary-encode
    both = select_rows(table, parse_select(["label=bonafide", "split=train"]))
    assert both["utt_id"].to_pylist() == ["a"]
    either = select_rows(table, parse_select(["label=bona-fide", "split=train,validation"]))  # corpus spellings
    assert either["utt_id"].to_pylist() == ["a", "c"]
    assert select_rows(table, ()) is table


@pytest.mark.parametrize("pairs,needle", [
    (["colour=red"], "unknown column 'colour'"), (["label"], "is not COLUMN=VALUE"), (["=x"], "is not COLUMN=VALUE"),
    (["split="], "is not COLUMN=VALUE"), (["label=maybe"], "label is one of bonafide, spoof"),
])
def test_bad_selections_are_usage_errors(pairs, needle):
    with pytest.raises(UsageError, match=needle):
        parse_select(pairs)


def test_run_takes_only_the_selected_clips_and_a_wider_run_resumes_them(tmp_path):
    out = tmp_path / "out"
    r = _run(out, "--select", "label=bonafide", "--select", "split=train", "--limit", "2")
    assert r.exit_code == 0, r.output
    rows = manifests.read(out / "manifest").to_pylist()
    originals = [x for x in rows if x["kind"] == "original"]
    assert len(originals) == 2 and {(x["label"], x["split"]) for x in originals} == {("bonafide", "train")}
    recon = [x for x in rows if x["kind"] == "reconstruction"]
    assert len(recon) == 2 and all("/audio/opus/bonafide/train/" in x["path"] for x in recon)  # the corpus's tree
    wider = _run(out, "--select", "split=train", "--dry-run")  # the same two, done, plus the train spoofs
    assert wider.exit_code == 0, wider.output
    line = next(x for x in wider.output.splitlines() if x.startswith("opus"))
    todo, skipped = map(int, line.split()[1:3])
    assert skipped == 2 and todo > 2, wider.output


@pytest.mark.parametrize("select,needle", [
    ("colour=red", "unknown column 'colour'"), ("split", "is not COLUMN=VALUE"),
    ("attack=nope", "no corpus clip matches (attack holds: -, espeak-cs, festival-cs)"),
])
def test_bad_select_is_one_line_exit_2(tmp_path, select, needle):
    r = _run(tmp_path / "out", "--select", select)
    assert r.exit_code == 2 and needle in r.output and "Traceback" not in r.output, r.output
    assert not (tmp_path / "out").exists()

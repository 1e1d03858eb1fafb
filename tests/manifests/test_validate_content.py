"""`manifests validate` reads the rows too (issue 19, item 5); `--schema-only` keeps the metadata fast path."""
import pyarrow as pa
import pyarrow.parquet as pq
from click.testing import CliRunner

import manifests
from manifests.cli import main
from manifests.corpus import import_corpus


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _flipped(rows):
    return [dict(r, label="spoof" if r["label"] == "bonafide" else "bonafide") for r in rows]


def test_two_parts_with_the_same_ids_and_opposite_labels_are_invalid(corpus, tmp_path):
    rows = import_corpus(corpus)
    m = tmp_path / "m"
    manifests.write_part(rows, m, "a")
    assert invoke("validate", m).exit_code == 0
    manifests.write_part(_flipped(rows), m, "b")
    r = invoke("validate", m)
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert "6 utt_id(s) in several rows with a different label" in r.output and "a.parquet, b.parquet" in r.output
    r = invoke("validate", m, "--schema-only")
    assert r.exit_code == 0 and "12 rows" in r.output and "schema only" in r.output


def test_retried_rows_of_one_clip_are_not_a_conflict(corpus, tmp_path):
    rows = import_corpus(corpus)
    manifests.write_part(rows, tmp_path / "m", "a")
    manifests.write_part([dict(r, status="failed", error="retried") for r in rows], tmp_path / "m", "b")
    assert invoke("validate", tmp_path / "m").exit_code == 0


def test_bad_values_are_named_with_a_count(corpus, tmp_path):
    rows = import_corpus(corpus)
    bad = [dict(rows[0], utt_id="x1", label="maybe", kind="weird", duration_s=-1.0),
           dict(rows[1], utt_id="x2", label="maybe", duration_s=float("nan"), split="later", sample_rate=0),
           dict(rows[2], utt_id="x3", status="pending", num_samples=-5)]
    table = manifests.to_table(rows[3:] + bad, tmp_path)
    nullable = pa.schema([f.with_nullable(True) for f in table.schema], metadata=table.schema.metadata)
    table = table.cast(nullable)
    label = table.schema.get_field_index("label")
    labels = table["label"].to_pylist()[:-1] + [None]  # x3 loses its label
    table = table.set_column(label, nullable.field(label), pa.array(labels, pa.string()))
    pq.write_table(table, tmp_path / "m.parquet")
    r = invoke("validate", tmp_path / "m.parquet")
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1
    for needle in ("1 row(s) with a null label", "2 row(s) with label not in bonafide|spoof (e.g. 'maybe')",
                   "kind not in original|reconstruction (e.g. 'weird')", "status not in ok|failed",
                   "split not in train|dev|eval", "2 row(s) with duration_s negative, NaN or infinite",
                   "sample_rate outside", "num_samples negative"):
        assert needle in r.output, needle
    assert invoke("validate", tmp_path / "m.parquet", "--schema-only").exit_code == 0


def test_import_refuses_an_out_that_is_not_parquet(corpus, tmp_path):
    r = invoke("import", "--corpus", corpus, "--out", tmp_path / "x.csv")
    assert r.exit_code == 2 and "Traceback" not in r.output and ".parquet" in r.output
    assert not (tmp_path / "x.csv").exists()

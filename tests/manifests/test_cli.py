import pyarrow as pa
import pyarrow.parquet as pq
from click.testing import CliRunner

import manifests
from manifests.cli import main
from manifests.schema import VERSION_KEY

from ..conftest import upload


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_import_validate_stats(corpus, tmp_path):
    out = tmp_path / "m.parquet"
    r = invoke("import", "--corpus", corpus, "--out", out)
    assert r.exit_code == 0 and "6 clips (0 unreadable)" in r.output
    r = invoke("validate", out)
    assert r.exit_code == 0 and "6 rows" in r.output
    r = invoke("stats", out)
    assert r.exit_code == 0
    assert any(line.split()[:2] == ["train", "bonafide"] and line.split()[-2] == "2" for line in r.output.splitlines())


def test_import_validate_stats_in_a_bucket(bucket, corpus):
    upload(corpus, f"{bucket}/corpus")
    out = f"{bucket}/manifests/m.parquet"
    r = invoke("import", "--corpus", f"{bucket}/corpus", "--out", out)
    assert r.exit_code == 0 and "6 clips (0 unreadable)" in r.output, r.output
    assert invoke("validate", out).exit_code == 0
    r = invoke("stats", out)
    assert r.exit_code == 0
    assert any(line.split()[:2] == ["dev", "spoof"] and line.split()[-2] == "1" for line in r.output.splitlines())
    assert manifests.read(out)["path"][0].as_py().startswith(f"{bucket}/corpus/")


def test_validate_bad_manifest_exit_2_names_problems(tmp_path):
    bad = pa.table({"utt_id": ["a"], "path": ["a.wav"], "label": ["bonafide"], "seed": ["x"]})
    pq.write_table(bad.replace_schema_metadata({VERSION_KEY: b"3.1"}), tmp_path / "bad.parquet")
    r = invoke("validate", tmp_path / "bad.parquet")
    assert r.exit_code == 2 and "Traceback" not in r.output
    for word in ("schema version 3.1", "missing column(s) kind", "seed has type string"):
        assert word in r.output
    assert invoke("validate", tmp_path / "nope").exit_code == 2

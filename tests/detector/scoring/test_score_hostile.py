"""`detector score` / `detector eval` on hostile input (issue 19): names that break a TSV, remote paths
in a local manifest, unwritable outputs, implausible headers, clips too long to hold."""
import csv
import io
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

import manifests
from detector import checkpoint
from detector.cli import main as detector
from detector.scoring.windows import score_paths
from tests.conftest import speechlike
from tests.detector.conftest import make_manifest

TINY = ["--frontend", "tiny", "--backend", "linear", "--tiny-hidden", "16", "--crop", "8000", "--batch-size", "2",
        "--epochs", "1", "--max-steps", "2", "--no-augment", "--no-progress"]


def run(*args):
    return CliRunner().invoke(detector, [str(a) for a in args])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("det")
    manifest = make_manifest(root / "train")
    r = run("train", "--manifest", manifest, "--out", root / "run", *TINY)
    assert r.exit_code == 0, r.output
    return root / "run", manifest


def read_tsv(path):
    """Rows of a scores file (line 1 is the comment) as dicts, with Python's csv module."""
    lines = Path(path).read_text().split("\n", 1)[1]
    return list(csv.DictReader(io.StringIO(lines, newline=""), delimiter="\t"))


def one_line_exit_2(r, needle):
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    assert len(r.output.strip().splitlines()) == 1 and needle in r.output, r.output


NAMES = ["#starts-with-hash.wav", "tab\there.wav", "new\nline.wav", 'quo"te.wav', "plain.wav"]


def test_scores_tsv_round_trips_any_file_name(trained, tmp_path):
    run_dir, _ = trained
    folder = tmp_path / "in"
    folder.mkdir()
    for i, name in enumerate(NAMES):
        sf.write(folder / name, speechlike(0.6, seed=i), 16000)
    out = tmp_path / "s.tsv"
    r = run("score", "--checkpoint", run_dir, "--input", folder, "--out", out, "--no-progress")
    assert r.exit_code == 0, r.output
    lines = out.read_text().split("\n")
    assert lines[0].startswith("# ") and "higher score = more likely bona fide" in lines[0]
    assert not any(line.startswith("#") for line in lines[1:])  # only the first line can read as a comment
    rows = list(csv.reader(io.StringIO("\n".join(lines[1:]), newline=""), delimiter="\t"))
    assert rows[0] == ["id", "path", "score", "decision", "error"]
    assert sorted(r[0] for r in rows[1:]) == sorted(NAMES) and all(len(r) == 5 and r[2] for r in rows[1:])
    pd = pytest.importorskip("pandas")
    for kwargs in ({"skiprows": 1}, {"comment": "#"}):
        frame = pd.read_csv(out, sep="\t", keep_default_na=False, dtype=str, **kwargs)
        assert sorted(frame["id"]) == sorted(NAMES) and frame["score"].astype(float).notna().all()


def test_score_checks_its_out_before_scoring(trained, tmp_path, monkeypatch):
    run_dir, manifest = trained

    def no_scoring(*a, **k):
        raise AssertionError("scored before checking --out")

    monkeypatch.setattr("detector.scoring.evaluate.score_paths", no_scoring)
    r = run("score", "--checkpoint", run_dir, "--input", manifest, "--out", "/proc/x.tsv", "--no-progress")
    one_line_exit_2(r, "not writable")
    (tmp_path / "blocker").write_text("a file where a folder should be")
    r = run("eval", "--checkpoint", run_dir, "--manifest", manifest, "--out", tmp_path / "blocker" / "ev",
            "--no-progress")
    one_line_exit_2(r, "not writable")


@pytest.mark.parametrize("args,needle", [(["--batch-size", "0"], "--batch-size"),
                                         (["--max-duration", "-1"], "--max-duration"),
                                         (["--max-duration", "nan"], "--max-duration")])
def test_bad_scoring_options_are_one_line(trained, tmp_path, args, needle):
    run_dir, manifest = trained
    one_line_exit_2(run("score", "--checkpoint", run_dir, "--input", manifest, "--out", tmp_path / "s.tsv", *args),
                    needle)


def test_remote_path_rule():
    from manifests.io import remote_path_refusal

    assert remote_path_refusal("s3://b/x.wav", "/data/m.parquet") is not None
    assert remote_path_refusal("http://host/x.wav", "/data/m.parquet") is not None
    assert remote_path_refusal("s3://b/x.wav", "/data/m.parquet", allow=True) is None
    assert remote_path_refusal("s3://b/x.wav", "gs://c/m.parquet") is None  # a remote manifest's paths are read
    assert remote_path_refusal("/data/x.wav", "/data/m.parquet") is None


@pytest.fixture
def remote_rows_manifest(trained, tmp_path, monkeypatch):
    """The training manifest plus two rows with remote paths; any attempt to reach a host is recorded
    and fails as an unreachable one would."""
    _, manifest = trained
    rows = manifests.read(manifest).to_pylist()
    extra = [dict(rows[0], utt_id="remote-s3", path="s3://some-bucket/x.wav"),
             dict(rows[0], utt_id="remote-http", path="http://example.invalid/x.wav")]
    m = manifests.write(rows + extra, tmp_path / "m.parquet")
    contacted = []

    def unreachable(scheme, bucket):
        contacted.append(f"{scheme}://{bucket}")
        raise manifests.UsageError(f"cannot open {scheme}://{bucket}: unreachable")

    monkeypatch.setattr("manifests.storage._filesystem", unreachable)
    return m, contacted


@pytest.mark.parametrize("command", ["eval", "score"])
def test_remote_paths_in_a_local_manifest_are_not_read_unless_allowed(trained, remote_rows_manifest, tmp_path, command):
    run_dir, _ = trained
    m, contacted = remote_rows_manifest
    out = tmp_path / "ev" if command == "eval" else tmp_path / "s.tsv"
    args = ["--checkpoint", run_dir, "--manifest" if command == "eval" else "--input", m, "--out", out, "--no-progress"]
    r = run(command, *args)
    assert r.exit_code == 0, r.output
    assert contacted == [] and "2 of them have remote paths" in r.output
    tsv = out / "scores.tsv" if command == "eval" else out
    rows = {x["utt_id" if command == "eval" else "id"]: x for x in read_tsv(tsv)}
    assert "--allow-remote-paths" in rows["remote-s3"]["error"] and not rows["remote-s3"]["score"]
    r = run(command, *args, "--allow-remote-paths")  # now read: the unreachable host fails its row alone
    assert r.exit_code == 0, r.output
    assert set(contacted) == {"s3://some-bucket", "http://example.invalid"}
    rows = {x["utt_id" if command == "eval" else "id"]: x for x in read_tsv(tsv)}
    assert "unreachable" in rows["remote-http"]["error"] and not rows["remote-http"]["score"]


def test_a_declared_duration_past_max_duration_is_an_error_row(trained, tmp_path):
    run_dir, _ = trained
    sf.write(tmp_path / "three-s.wav", speechlike(3.0), 16000)
    sf.write(tmp_path / "one-s.wav", speechlike(1.0), 16000)
    r = run("score", "--checkpoint", run_dir, "--input", tmp_path, "--out", tmp_path / "s.tsv", "--max-duration", "2",
            "--no-progress")
    assert r.exit_code == 0, r.output
    rows = {x["id"]: x for x in read_tsv(tmp_path / "s.tsv")}
    assert "--max-duration" in rows["three-s.wav"]["error"] and rows["one-s.wav"]["score"]


@pytest.mark.parametrize("sr", [16000, 44100])
def test_streamed_scores_equal_in_memory_scores(trained, tmp_path, sr):
    run_dir, _ = trained
    model, cfg, _ = checkpoint.load(run_dir)
    path = tmp_path / "long.flac"
    sf.write(path, np.stack([speechlike(7.3, sr), speechlike(7.3, sr, seed=3)], axis=1), sr)  # stereo
    whole, e1, _ = score_paths(model, [str(path)], cfg.data.crop)
    streamed, e2, _ = score_paths(model, [str(path)], cfg.data.crop, stream_above=1000)
    assert not e1 and not e2
    np.testing.assert_allclose(streamed, whole, rtol=1e-5, atol=1e-5)


def test_streamed_windows_are_data_windows():
    from detector.training.data import windows
    from detector.scoring.windows import streamed_windows

    x = np.arange(23, dtype=np.float32)
    for length in (5, 23, 40):
        for block in (1, 4, 100):
            got = list(streamed_windows((x[i:i + block] for i in range(0, 23, block)), length))
            np.testing.assert_array_equal(np.stack(got), windows(x, length))


def test_a_fifo_listed_in_a_manifest_is_an_error_row_with_the_reason(trained, tmp_path):
    import os

    run_dir, manifest = trained
    os.mkfifo(tmp_path / "pipe.wav")
    rows = manifests.read(manifest).to_pylist()
    m = manifests.write(rows + [dict(rows[0], utt_id="pipe", path=str(tmp_path / "pipe.wav"))], tmp_path / "m.parquet")
    r = run("score", "--checkpoint", run_dir, "--input", m, "--out", tmp_path / "s.tsv", "--no-progress")
    assert r.exit_code == 0, r.output
    row = next(x for x in read_tsv(tmp_path / "s.tsv") if x["id"] == "pipe")
    assert not row["score"] and "named pipe (FIFO)" in row["error"]

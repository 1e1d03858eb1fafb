"""Where `detector score` and `detector export` write (issue 29 cases 10-11, issue 26 item 6): positional
FILES and a table on stdout without --out, `--out -` as a TSV on stdout, only the last folder level of --out
created, one writer per scores file (a lock), an unwritable export target and a --noise-dir that is a file
refused in one line."""
import csv
import io
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from detector.cli import main as detector
from manifests.outfile import lock_path
from tests.conftest import speechlike
from tests.detector.conftest import make_manifest

TINY = ["--frontend", "tiny", "--backend", "linear", "--tiny-hidden", "16", "--crop", "8000", "--batch-size", "2",
        "--epochs", "1", "--max-steps", "1", "--no-augment", "--no-progress"]
ROOT = Path(__file__).resolve().parents[3]


def run(*args):
    return CliRunner().invoke(detector, [str(a) for a in args])


def one_line_exit_2(r, *needles):
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and all(n in lines[0] for n in needles), r.output


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("det")
    manifest = make_manifest(root / "train")
    r = run("train", "--manifest", manifest, "--out", root / "run", *TINY)
    assert r.exit_code == 0, r.output
    clips = root / "clips"
    clips.mkdir()
    for i, name in enumerate(["a.wav", "b.wav"]):
        sf.write(clips / name, speechlike(0.6, seed=i), 16000)
    (clips / "broken.wav").write_bytes(b"not audio\n" * 20)
    return root / "run", manifest, clips


def _table(output: str) -> list[list[str]]:
    return [line.split() for line in output.strip().splitlines()]


def test_positional_files_print_a_table(trained):
    run_dir, _, clips = trained
    r = run("score", "--checkpoint", run_dir, clips / "a.wav", clips / "b.wav", clips / "broken.wav", "--no-progress")
    assert r.exit_code == 0, r.output
    table = _table(r.stdout)
    assert table[0] == ["file", "score", "decision"]
    assert [Path(row[0]).name for row in table[1:]] == ["a.wav", "b.wav", "broken.wav"]
    for row in table[1:3]:
        float(row[1])
        assert row[2] in ("bonafide", "spoof")
    assert table[3][1] == "-" and table[3][2] == "not" and "cannot decode" in r.stdout.splitlines()[3]
    assert "scored 2 file(s), 1 not scored" in r.stderr and "scored 2 file(s)" not in r.stdout


def test_a_folder_a_manifest_and_input_mix(trained):
    run_dir, manifest, clips = trained
    r = run("score", "--checkpoint", run_dir, clips, "--input", manifest, "--no-progress")
    assert r.exit_code == 0, r.output
    n_manifest = len(__import__("manifests").read(manifest))
    assert len(_table(r.stdout)) == 1 + 3 + n_manifest


def test_out_dash_prints_the_tsv(trained, tmp_path):
    run_dir, _, clips = trained
    r = run("score", "--checkpoint", run_dir, clips / "a.wav", "--out", "-", "--no-progress")
    assert r.exit_code == 0, r.output
    first, body = r.stdout.split("\n", 1)
    assert first.startswith("# hardspoof scores") and "higher score = more likely bona fide" in first
    rows = list(csv.DictReader(io.StringIO(body, newline=""), delimiter="\t"))
    assert len(rows) == 1 and rows[0]["decision"] in ("bonafide", "spoof") and np.isfinite(float(rows[0]["score"]))
    assert not (Path.cwd() / "-").exists() and "scored 1 file(s)" in r.stderr


def test_a_calibrated_checkpoint_adds_p_bonafide(trained, tmp_path):
    run_dir, manifest, clips = trained
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    assert run("calibrate", "--checkpoint", copy, "--manifest", manifest, "--split", "train",
               "--no-progress").exit_code == 0
    r = run("score", "--checkpoint", copy, clips / "a.wav", clips / "broken.wav", "--no-progress")
    assert r.exit_code == 0, r.output
    table = _table(r.stdout)
    assert table[0] == ["file", "score", "decision", "p_bonafide"]
    assert 0.0 <= float(table[1][3]) <= 1.0 and table[2][-1] == "-"


def test_nothing_to_score_and_ray_without_out_are_one_line(trained):
    run_dir, _, clips = trained
    one_line_exit_2(run("score", "--checkpoint", run_dir), "give the audio to score")
    one_line_exit_2(run("score", "--checkpoint", run_dir, clips, "--executor", "ray"), "give --out FILE")
    one_line_exit_2(run("score", "--checkpoint", run_dir, clips / "nope.wav"), "nope.wav does not exist")


def test_out_creates_only_the_last_folder_level(trained, tmp_path):
    run_dir, _, clips = trained
    deep = tmp_path / "not-there" / "dir" / "s.tsv"
    one_line_exit_2(run("score", "--checkpoint", run_dir, clips / "a.wav", "--out", deep, "--no-progress"),
                    "only the last folder level is created")
    assert not (tmp_path / "not-there").exists()
    one_level = tmp_path / "new" / "s.tsv"
    r = run("score", "--checkpoint", run_dir, clips / "a.wav", "--out", one_level, "--no-progress")
    assert r.exit_code == 0 and one_level.is_file(), r.output
    assert not lock_path(one_level).exists()  # the lock goes with its run


HOLD = """
import sys, time
from manifests.outfile import output_lock
with output_lock(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(60)
"""


def test_a_second_writer_of_one_scores_file_is_refused(trained, tmp_path):
    run_dir, _, clips = trained
    out = tmp_path / "s.tsv"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        r = run("score", "--checkpoint", run_dir, clips / "a.wav", "--out", out, "--no-progress")
        one_line_exit_2(r, str(out), f"is being written by pid {holder.pid}")
        assert not out.exists()
    finally:
        holder.kill()
        holder.wait()
    # killed (as with kill -9), its lock file stays but holds no lock: the next run takes it, then removes it
    assert lock_path(out).exists()
    r = run("score", "--checkpoint", run_dir, clips / "a.wav", "--out", out, "--no-progress")
    assert r.exit_code == 0 and out.is_file(), r.output
    assert not lock_path(out).exists()


def test_export_to_an_unwritable_place_is_one_line(trained, tmp_path):
    run_dir, _, _ = trained
    one_line_exit_2(run("export", "--checkpoint", run_dir, "--out", "/proc/x.onnx"), "/proc/x.onnx", "not writable")
    one_line_exit_2(run("export", "--checkpoint", run_dir, "--out", tmp_path / "a" / "b" / "m.onnx"),
                    "only the last folder level is created")


def test_a_noise_dir_that_is_a_file_is_refused(trained, tmp_path):
    _, manifest, clips = trained
    for option in ("--noise-dir", "--rir-dir"):
        r = run("train", "--manifest", manifest, "--out", tmp_path / "r", *TINY, "--augment", option, clips / "a.wav")
        one_line_exit_2(r, option, "a.wav is a file", "give a folder")


def test_eval_out_creates_only_its_last_level_and_pretrained_default_is_a_plain_folder(tmp_path, monkeypatch):
    """`detector eval --out a/b/c` with no a/b is one line (no tree of folders from a typo); a published model's
    default output is ./eval/pretrained-NAME/<manifest>, not a folder named like the `pretrained:` spec."""
    from click.testing import CliRunner

    from detector.cli import main
    from detector.scoring import evaluate as ev

    deep = tmp_path / "no" / "such" / "out"
    r = CliRunner().invoke(main, ["eval", "--checkpoint", str(tmp_path), "--manifest", str(tmp_path / "m.parquet"),
                                  "--out", str(deep)])
    assert r.exit_code == 2 and "parent folder does not exist" in r.output and not (tmp_path / "no").exists()
    monkeypatch.chdir(tmp_path)
    seen = {}

    def stop(path):
        seen["out"] = path
        raise SystemExit(0)
    monkeypatch.setattr(ev.storage, "check_writable", stop)
    with pytest.raises(SystemExit):
        ev.evaluate("pretrained:aasist", str(tmp_path / "dev.parquet"))
    assert str(seen["out"]) == str(Path("eval") / "pretrained-aasist" / "dev")

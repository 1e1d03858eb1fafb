"""The reconstruction stage end to end with the in-process executor (the Ray one is in test_ray.py)."""
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

import manifests
from manifests.schema import COLUMN_NAMES
from reconstruct.cli import main

FAST = ["--param", "n_iter=4"]


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def run_args(corpus, out, *extra):
    return ["run", "--method", "vocoder", "--model", "griffinlim", *FAST, "--corpus", corpus, "--out", out,
            "--executor", "local", *extra]


def test_run_writes_originals_and_reconstructions(corpus, tmp_path):
    out = tmp_path / "out"
    r = invoke(*run_args(corpus, out))
    assert r.exit_code == 0, r.output
    table = manifests.read(out / "manifest")
    assert set(table.column_names) == set(COLUMN_NAMES)
    rows = table.to_pylist()
    originals = [x for x in rows if x["kind"] == "original"]
    recon = [x for x in rows if x["kind"] == "reconstruction"]
    assert len(originals) == 6 and len(recon) == 6
    by_id = {x["utt_id"]: x for x in originals}
    for x in recon:
        src = by_id[x["source_id"]]
        assert x["status"] == "ok" and x["label"] == "spoof" and x["method"] == "vocoder"
        assert x["model"] == "griffinlim" and '"n_iter": 4' in x["params"] and x["seed"] is not None
        assert x["split"] == src["split"] and x["speaker"] == src["speaker"]
        assert x["num_samples"] == src["num_samples"] and x["sample_rate"] == src["sample_rate"]
        assert np.isfinite(x["lsd_db"]) and x["sha256"] == manifests.storage.sha256(x["path"])
        # output mirrors the corpus tree
        assert x["path"].endswith(os.path.relpath(src["path"], corpus).replace(".wav", ".flac"))
    parts = [os.path.basename(p) for p in manifests.part_files(out / "manifest")]
    assert len(parts) == 1 and re.fullmatch(r"manifest-[0-9a-f]{12}\.parquet", parts[0])  # compacted


def test_rerun_does_no_work_twice(corpus, tmp_path):
    out = tmp_path / "out"
    assert invoke(*run_args(corpus, out)).exit_code == 0
    mtimes = {p: p.stat().st_mtime_ns for p in (out / "audio").rglob("*.flac")}
    r = invoke(*run_args(corpus, out))
    assert r.exit_code == 0 and "      6 " in r.output  # 6 skipped
    assert {p: p.stat().st_mtime_ns for p in (out / "audio").rglob("*.flac")} == mtimes
    table = manifests.read(out / "manifest")
    assert table.num_rows == 12 and len(set(table["utt_id"].to_pylist())) == 12


def test_a_clip_that_fails_is_a_row_and_the_rest_finish(corpus, tmp_path):
    # decodable header (so import accepts it) but too short for the back-end
    sf.write(corpus / "bonafide/spk0/utt0.flac", np.zeros(20, np.float32), 16000)
    out = tmp_path / "out"
    r = invoke(*run_args(corpus, out, "--max-failure-rate", "0.5"))
    assert r.exit_code == 0, r.output
    recon = [x for x in manifests.read(out / "manifest").to_pylist() if x["kind"] == "reconstruction"]
    failed = [x for x in recon if x["status"] == "failed"]
    assert len(recon) == 6 and len(failed) == 1 and "shorter than" in failed[0]["error"]
    assert not (out / "audio/griffinlim/bonafide/spk0/utt0.flac").exists()
    # above the failure-rate limit the run exits 1; --retry-failed redoes it
    assert invoke(*run_args(corpus, out, "--retry-failed", "--max-failure-rate", "0")).exit_code == 1


def test_several_paradigms_in_one_manifest(corpus, tmp_path):
    out = tmp_path / "out"
    r = invoke("run", "--method", "codec,vocoder", "--model", "opus", "--model", "griffinlim", *FAST,
               "--corpus", corpus, "--out", out, "--executor", "local")
    assert r.exit_code == 0, r.output
    recon = [x for x in manifests.read(out / "manifest").to_pylist() if x["kind"] == "reconstruction"]
    assert sorted({(x["method"], x["model"]) for x in recon}) == [("codec", "opus"), ("vocoder", "griffinlim")]
    assert len(recon) == 12


@pytest.mark.parametrize("args,message", [
    (["run", "--method", "telepathy", "--corpus", "demo", "--out", "x"], "unknown method 'telepathy'"),
    (["run", "--model", "grifinlim", "--corpus", "demo", "--out", "x"], "Did you mean 'griffinlim'"),
    (["run", "--method", "vocoder", "--corpus", "/no/such/corpus", "--out", "x"], "corpus not found"),
    (["run", "--method", "codec", "--model", "griffinlim", "--corpus", "demo", "--out", "x"], "is a vocoder"),
    (["run", "--model", "griffinlim", "--param", "nope=1", "--corpus", "demo", "--out", "x"], "parameter 'nope'"),
])
def test_bad_usage_exits_2_with_one_line(args, message):
    r = invoke(*args)
    assert r.exit_code == 2, r.output
    assert message in r.output and "Traceback" not in r.output


def test_unwritable_out_is_exit_2(corpus, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = invoke(*run_args(corpus, blocker / "out"))
    assert r.exit_code == 2 and "not writable" in r.output


def test_dry_run_loads_nothing_and_writes_nothing(corpus, tmp_path):
    r = invoke(*run_args(corpus, tmp_path / "out", "--dry-run"))
    assert r.exit_code == 0 and "6 reconstructions to do" in r.output
    assert not (tmp_path / "out").exists()


def test_list_shows_every_backend():
    r = invoke("list")
    assert r.exit_code == 0
    for name in ("griffinlim", "opus", "mp3", "vorbis"):
        assert name in r.output
    assert "weight-free" in r.output and "mel-diffusion" in r.output


def test_kill_9_mid_run_then_rerun_completes_without_duplicates(corpus, tmp_path):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "reconstruct.cli", *run_args(str(corpus), str(out), "--batch-size", "1")]
    cmd[cmd.index("n_iter=4")] = "n_iter=150"  # slow enough to be caught mid-run
    env = dict(os.environ, HARDSPOOF_NO_BAR="1")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and len(list((out / "manifest").glob("part-*.parquet"))) < 2:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    parts = list((out / "manifest").glob("part-*.parquet"))
    assert 2 <= len(parts) < 6, "the kill should land mid-run"
    assert not list((out / "audio").rglob("*.flac.tmp"))  # temp files are hidden dot-files at worst
    r = invoke(*cmd[3:])  # the same command again
    assert r.exit_code == 0, r.output
    table = manifests.read(out / "manifest")
    ids = table["utt_id"].to_pylist()
    assert len(ids) == len(set(ids)) == 12
    assert all(s == "ok" for s in table["status"].to_pylist())
    assert all(sf.info(p).frames > 0 for p in table["path"].to_pylist())
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # the killed run's plan folder swept (29.6)


def test_spectrogram_figure(corpus, tmp_path):
    out = tmp_path / "out"
    r = invoke(*run_args(corpus, out, "--spectrograms", "2"))
    assert r.exit_code == 0, r.output
    png = out / "spectrograms.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_disk_full_midway_stops_cleanly_and_the_rerun_completes(corpus, tmp_path, monkeypatch):
    import errno

    import reconstruct.worker as worker

    real, calls = worker.manifests.write_part, []

    def write_part(rows, folder, name):
        calls.append(name)
        if len(calls) == 3:  # two batches (reconstructions + their sources' rows), then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(rows, folder, name)

    monkeypatch.setattr(worker.manifests, "write_part", write_part)
    out = tmp_path / "out"
    r = invoke(*run_args(corpus, out, "--batch-size", "2"))
    assert r.exit_code == 2 and "disk full" in r.output and "Traceback" not in r.output
    kept = manifests.read(out / "manifest")
    assert sum(k == "reconstruction" for k in kept["kind"].to_pylist()) == 4
    assert sum(k == "original" for k in kept["kind"].to_pylist()) == 4
    monkeypatch.setattr(worker.manifests, "write_part", real)
    r = invoke(*run_args(corpus, out, "--batch-size", "2"))
    assert r.exit_code == 0, r.output
    table = manifests.read(out / "manifest")
    assert table.num_rows == 12 and set(table["status"].to_pylist()) == {"ok"}

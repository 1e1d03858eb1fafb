"""`reconstruct run` driven as a careless or hostile user would (issue 19): each case gives one line and
exit 2 before any work, a failed row for the one clip, or a counted skip, never a hang or a traceback."""
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import soundfile as sf
from click.testing import CliRunner

import manifests
from manifests.corpus import import_corpus
from reconstruct.cli import main
from tests.conftest import speechlike

OPUS = ["--model", "opus", "--executor", "local"]


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def one_line_exit_2(r, *needles):
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    lines = [x for x in r.output.splitlines() if x.startswith("Error")]
    assert len(lines) == 1, r.output
    for n in needles:
        assert n in lines[0], r.output


def small_folder(root: Path, n: int = 2) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        sf.write(root / f"c{i:02d}.wav", speechlike(0.3, seed=i), 16000)
    return root


def test_out_inside_a_folder_corpus_is_never_imported_as_originals(tmp_path):
    corpus = small_folder(tmp_path / "c")
    for _ in range(2):
        r = invoke("run", *OPUS, "--corpus", corpus, "--out", corpus / "recon")
        assert r.exit_code == 0, r.output
    rows = manifests.read(corpus / "recon" / "manifest").to_pylist()
    originals = [x for x in rows if x["kind"] == "original"]
    assert sorted(x["utt_id"] for x in originals) == ["c00", "c01"]
    assert all(x["label"] == "bonafide" and "recon" not in x["path"] for x in originals)
    assert len(rows) == 4
    assert "output folder" in r.output  # the second run says what it left out


@pytest.mark.parametrize("ids", [("a", "b"), ("x", "y")])  # ("x", ...): the first path is root/<utt_id>.wav
def test_two_clips_with_one_output_path_are_refused_before_any_work(tmp_path, ids):
    for name in ("x.wav", "x.flac"):
        sf.write(tmp_path / name, speechlike(0.3), 16000)
    (tmp_path / "p.csv").write_text(f"utt_id,path,label\n{ids[0]},x.wav,bonafide\n{ids[1]},x.flac,bonafide\n")
    r = invoke("run", *OPUS, "--corpus", tmp_path / "p.csv", "--out", tmp_path / "o")
    one_line_exit_2(r, "x.wav", "x.flac", "x.flac")
    assert not (tmp_path / "o").exists()


def test_a_utt_id_with_a_reconstruction_suffix_is_refused(tmp_path):
    for name in ("y.wav", "z.wav"):
        sf.write(tmp_path / name, speechlike(0.3), 16000)
    (tmp_path / "p.csv").write_text("utt_id,path,label\ny,y.wav,bonafide\ny__vorbis,z.wav,bonafide\n")
    r = invoke("run", "--model", "vorbis", "--executor", "local", "--corpus", tmp_path / "p.csv", "--out", tmp_path / "o")
    one_line_exit_2(r, "y__vorbis")
    assert not (tmp_path / "o").exists()


def test_an_implausible_header_rate_is_a_failed_row_before_decoding(tmp_path):
    from tests.badinput import _wav_header

    corpus = small_folder(tmp_path / "c", 1)
    (corpus / "one-hz.wav").write_bytes(_wav_header(16000, sr=1) + b"\x01\x00" * 16000)
    start = time.monotonic()
    r = invoke("run", *OPUS, "--corpus", corpus, "--out", tmp_path / "o", "--max-failure-rate", "1")
    assert r.exit_code == 0, r.output
    assert time.monotonic() - start < 60  # it took 28 s and 3.6 GB before the fix, ending in ZeroDivisionError
    row = next(x for x in manifests.read(tmp_path / "o" / "manifest").to_pylist() if x["utt_id"] == "one-hz")
    assert row["status"] == "failed" and "sample rate of 1 Hz" in row["error"]


def test_a_declared_duration_past_max_duration_is_a_failed_row(tmp_path):
    corpus = small_folder(tmp_path / "c", 1)
    sf.write(corpus / "long.wav", speechlike(3.0), 16000)
    r = invoke("run", *OPUS, "--corpus", corpus, "--out", tmp_path / "o", "--max-duration", "2",
               "--max-failure-rate", "1")
    assert r.exit_code == 0, r.output
    rows = {x["utt_id"]: x for x in manifests.read(tmp_path / "o" / "manifest").to_pylist()}
    assert rows["long"]["status"] == "failed" and "--max-duration" in rows["long"]["error"]
    assert rows["c00__opus"]["status"] == "ok" and "long__opus" not in rows


def test_a_fifo_named_in_a_protocol_is_a_failed_row_not_a_hang(tmp_path):
    sf.write(tmp_path / "good.wav", speechlike(0.3), 16000)
    os.mkfifo(tmp_path / "pipe.wav")
    (tmp_path / "p.csv").write_text("path,label\ngood.wav,bonafide\npipe.wav,bonafide\n")
    result = {}
    worker = threading.Thread(target=lambda: result.update(rows=import_corpus(tmp_path / "p.csv")), daemon=True)
    worker.start()
    worker.join(30)
    assert not worker.is_alive(), "importing a protocol that names a FIFO hangs"
    rows = {Path(x["path"]).name: x for x in result["rows"]}
    assert rows["good.wav"]["status"] == "ok"
    assert rows["pipe.wav"]["status"] == "failed" and "named pipe" in rows["pipe.wav"]["error"]


def test_a_fifo_in_a_folder_is_skipped_with_the_right_reason(tmp_path, caplog):
    corpus = small_folder(tmp_path / "c", 1)
    os.mkfifo(corpus / "pipe.wav")
    with caplog.at_level("WARNING", logger="hardspoof.corpus"):
        rows = import_corpus(corpus)
    assert [x["utt_id"] for x in rows] == ["c00"]
    assert "1 named pipe(s)" in caplog.text and "symlink" not in caplog.text


def test_a_symlinked_folder_cannot_lead_a_protocol_outside_its_root(tmp_path):
    outside = small_folder(tmp_path / "elsewhere", 1)
    root = tmp_path / "corpus"
    root.mkdir()
    (root / "ext").symlink_to(outside, target_is_directory=True)
    (root / "p.csv").write_text("path,label\next/c00.wav,bonafide\n")
    r = invoke("run", *OPUS, "--corpus", root / "p.csv", "--out", tmp_path / "o")
    one_line_exit_2(r, "outside the corpus root")
    assert import_corpus(root / "p.csv", allow_outside_root=True)[0]["status"] == "ok"


@pytest.mark.parametrize("args,needle", [
    (["--device", "bogus"], "--device"),
    (["--limit", "0"], "--limit"),
    (["--limit", "-3"], "--limit"),
    (["--max-failure-rate", "1.5"], "--max-failure-rate"),
    (["--max-failure-rate", "-0.1"], "--max-failure-rate"),
    (["--max-failure-rate", "nan"], "--max-failure-rate"),
    (["--max-duration", "0"], "--max-duration"),
    (["--spectrograms", "-1"], "--spectrograms"),
])
def test_bad_option_values_are_one_line_exit_2(tmp_path, args, needle):
    corpus = small_folder(tmp_path / "c", 1)
    r = invoke("run", *OPUS, "--corpus", corpus, "--out", tmp_path / "o", *args)
    one_line_exit_2(r, needle)
    assert not (tmp_path / "o").exists()


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_a_rerun_sweeps_temp_files_of_killed_runs_and_keeps_live_ones(tmp_path):
    from manifests import tempfiles

    corpus = small_folder(tmp_path / "c", 1)
    out = tmp_path / "o"
    assert invoke("run", *OPUS, "--corpus", corpus, "--out", out).exit_code == 0
    host = tempfiles._host()
    old_style = out / "manifest" / f".part-opus-0123456789abcdef.parquet.{'a' * 32}.tmp"
    dead = out / "audio" / "opus" / f".hs-{host}-{_dead_pid()}-0badf00d.tmp"
    live = out / "manifest" / f".hs-{host}-{os.getpid()}-0badf00d.tmp"
    for f in (old_style, dead, live):
        f.write_bytes(b"partial")
    os.utime(old_style, (time.time() - 7200, time.time() - 7200))
    r = invoke("run", *OPUS, "--corpus", corpus, "--out", out)
    assert r.exit_code == 0, r.output
    assert not old_style.exists() and not dead.exists() and live.exists()
    assert "removed 2 temp file(s)" in r.output


def test_a_255_byte_file_name_reconstructs(tmp_path):
    corpus = tmp_path / "c"
    corpus.mkdir()
    name = "n" * 250 + ".wav"  # 254 bytes; its reconstruction is 250 + '.flac' = 255 bytes, the usual NAME_MAX
    sf.write(corpus / name, speechlike(0.3), 16000)
    r = invoke("run", *OPUS, "--corpus", corpus, "--out", tmp_path / "o")
    assert r.exit_code == 0, r.output
    row = next(x for x in manifests.read(tmp_path / "o" / "manifest").to_pylist() if x["kind"] == "reconstruction")
    assert row["status"] == "ok", row["error"]
    assert len(Path(row["path"]).name.encode()) == 255


def test_a_rerun_sweeps_plan_folders_and_write_probes_of_dead_runs_only(tmp_path):
    """kill -9 leaves OUT/.plan-HOST-PID-RUN/ and a 0-byte OUT/.write-probe-HOST-PID-X (issue 29.6)."""
    from manifests import tempfiles

    corpus = small_folder(tmp_path / "c", 1)
    out = tmp_path / "o"
    assert invoke("run", *OPUS, "--corpus", corpus, "--out", out).exit_code == 0
    host, dead, live = tempfiles._host(), _dead_pid(), os.getpid()
    dead_plan = out / f".plan-{host}-{dead}-20260101T000000Z-0123abcd"
    live_plan = out / f".plan-{host}-{live}-20260101T000000Z-4567abcd"
    old_plan = out / ".plan-20260101T000000Z-89abcdef"  # the naming before: the run cannot be asked, so by age
    for d in (dead_plan, live_plan, old_plan):
        (d / "spec-0").mkdir(parents=True)
        (d / "spec-0" / "c000000-000000.parquet").write_bytes(b"PAR1")
    os.utime(old_plan, (time.time() - 8 * 86400, time.time() - 8 * 86400))
    dead_probe, live_probe = out / f".write-probe-{host}-{dead}-0badf00d", out / f".write-probe-{host}-{live}-0badf00d"
    old_probe = out / f".write-probe-{'c' * 32}"
    for f in (dead_probe, live_probe, old_probe):
        f.write_bytes(b"")
    os.utime(old_probe, (time.time() - 7200, time.time() - 7200))
    r = invoke("run", *OPUS, "--corpus", corpus, "--out", out)
    assert r.exit_code == 0, r.output
    assert not dead_plan.exists() and not old_plan.exists() and live_plan.exists()
    assert not dead_probe.exists() and not old_probe.exists() and live_probe.exists()
    assert "2 write probe(s), 2 plan folder(s)" in r.output
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == sorted([live_plan.name, live_probe.name])


def test_file_names_of_252_to_255_bytes_get_a_short_deterministic_output_name(tmp_path):
    """`.wav` -> `.flac` would make these 256-259 bytes: past NAME_MAX (issue 29.7)."""
    corpus = tmp_path / "c"
    corpus.mkdir()
    names = ["a" * n + ".wav" for n in (248, 249, 250, 251)] + ["a" * 250 + "b.wav"]  # 252..255 bytes; two share 250
    for i, name in enumerate(names):
        sf.write(corpus / name, speechlike(0.3, seed=i), 16000)
    r = invoke("run", *OPUS, "--corpus", corpus, "--out", tmp_path / "o")
    assert r.exit_code == 0, r.output
    recon = [x for x in manifests.read(tmp_path / "o" / "manifest").to_pylist() if x["kind"] == "reconstruction"]
    assert len(recon) == 5 and {x["status"] for x in recon} == {"ok"}, [x["error"] for x in recon]
    out_names = {Path(x["path"]).name for x in recon}
    assert len(out_names) == 5 and max(len(n.encode()) for n in out_names) == 255
    r = invoke("run", *OPUS, "--corpus", corpus, "--out", tmp_path / "o")  # the same names again: all skipped
    assert r.exit_code == 0 and " 5        5      0       0 " in r.output, r.output


@pytest.mark.parametrize("args,needle", [
    (["--out", ""], "--out is empty"),
    (["--corpus", ""], "--corpus is empty"),
    (["--checkpoint", "/nonexistent"], "opus is weight-free and takes no weights"),
    (["--model", "encodec-24khz", "--checkpoint", "/nonexistent"], "--checkpoint /nonexistent does not exist"),
])
def test_empty_paths_and_a_checkpoint_no_model_takes_are_one_line_exit_2(tmp_path, monkeypatch, args, needle):
    """issue 29.10: `--out ''` wrote into the current folder; --checkpoint was ignored by weight-free models."""
    corpus = small_folder(tmp_path / "c", 1)
    monkeypatch.chdir(tmp_path)
    given = {"--corpus": str(corpus), "--out": str(tmp_path / "o"), "--model": "opus"}
    for k, v in zip(args[::2], args[1::2]):
        given[k] = v
    r = invoke("run", "--executor", "local", *[x for kv in given.items() for x in kv])
    one_line_exit_2(r, needle)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c"]  # nothing written, here or in o


def test_garbage_named_mp3_says_what_it_is_not_possibly_a_pipe(tmp_path):
    from manifests.audio import AudioError, load_audio

    (tmp_path / "g.mp3").write_bytes(bytes(range(256)) * 12)
    with pytest.raises(AudioError) as caught:
        load_audio(tmp_path / "g.mp3")
    assert "possibly a pipe" not in str(caught.value) and "not in an audio format" in str(caught.value)

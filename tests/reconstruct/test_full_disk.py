"""A write that fails for lack of space is not a clip failure (issue 29, case 5): the run stops with one line
and no traceback, no `failed` row is written for it, and the same command, once there is space, redoes it."""
import errno
import io
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

import manifests
from manifests import audio
from reconstruct.cli import main
from tests.conftest import speechlike


def _corpus(root: Path, n: int) -> Path:
    root.mkdir()
    for i in range(n):
        sf.write(root / f"u{i:02d}.wav", speechlike(1.0, seed=i), 16000)
    return root


def _run(corpus: Path, out: Path):
    return CliRunner().invoke(main, ["run", "--model", "griffinlim", "--param", "n_iter=2", "--executor", "local",
                                     "--batch-size", "2", "--corpus", str(corpus), "--out", str(out)])


def _stopped_cleanly(r) -> None:
    assert r.exit_code == 2 and "disk full" in r.output, r.output
    assert "Traceback" not in r.output and "AssertionError" not in r.output, r.output


def _all_ok(out: Path, n: int) -> None:
    table = manifests.read(out / "manifest")
    assert table.num_rows == 2 * n
    assert set(table["status"].to_pylist()) == {"ok"}, [e for e in table["error"].to_pylist() if e]


class _FillsUp(io.BytesIO):
    """A file that takes `room` bytes, then fails as a full disk does."""

    def __init__(self, room: int):
        super().__init__()
        self.room = room

    def write(self, data) -> int:
        if self.tell() + len(data) > self.room:
            raise OSError(errno.ENOSPC, "No space left on device")
        return super().write(data)


def test_the_sound_writer_raises_the_disk_full_error_itself():
    """soundfile's C callback would print the OSError and turn it into an AssertionError."""
    with pytest.raises(OSError) as caught:
        with audio.sound_writer(_FillsUp(2000), 16000, "FLAC") as f:
            f.write(speechlike(2.0))
    assert caught.value.errno == errno.ENOSPC


def test_disk_full_in_the_audio_writer_stops_the_run_and_the_rerun_redoes_it(tmp_path, monkeypatch):
    corpus, out = _corpus(tmp_path / "c", 6), tmp_path / "o"
    real, calls = audio.storage.write_atomic, []

    def write_atomic(loc, write):
        calls.append(loc) if str(loc).endswith(".flac") else None
        if str(loc).endswith(".flac") and len(calls) == 4:  # the fourth audio file finds the disk full mid-write
            write(_FillsUp(3000))
        return real(loc, write)

    monkeypatch.setattr(audio.storage, "write_atomic", write_atomic)
    _stopped_cleanly(_run(corpus, out))
    monkeypatch.setattr(audio.storage, "write_atomic", real)
    r = _run(corpus, out)
    assert r.exit_code == 0, r.output
    _all_ok(out, 6)


@pytest.fixture
def small_disk(tmp_path):
    """A 300 KB tmpfs (needs the right to mount: skipped elsewhere); unmounted after the test."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def test_a_real_full_disk_loses_no_work(tmp_path, small_disk):
    """End to end on a real full disk (where it stops depends on the file system: a Parquet part or an audio
    file); the callback path itself is pinned by the tests above."""
    corpus, out = _corpus(tmp_path / "c", 16), small_disk / "o"
    _stopped_cleanly(_run(corpus, out))
    subprocess.run(["mount", "-o", "remount,size=4m", str(small_disk)], check=True)
    r = _run(corpus, out)
    assert r.exit_code == 0, r.output
    _all_ok(out, 16)
    assert all(np.isfinite(sf.read(p)[0]).all() for p in manifests.read(out / "manifest")["path"].to_pylist())

"""Atomic writes to names up to NAME_MAX, and the sweep of temp files left by killed writers (issue 19)."""
import os
import subprocess
import sys
import time

from manifests import storage


def test_a_255_byte_destination_name_can_be_written_atomically(tmp_path):
    dest = tmp_path / ("x" * 251 + ".bin")
    assert len(dest.name.encode()) == 255
    storage.write_atomic(dest, lambda fh: fh.write(b"data"))
    assert dest.read_bytes() == b"data" and os.listdir(tmp_path) == [dest.name]


def test_sweep_removes_only_what_dead_or_old_writers_left(tmp_path):
    from manifests import tempfiles

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = tempfiles._host()
    (tmp_path / "sub").mkdir()
    names = {
        "dead": tmp_path / "sub" / f".hs-{host}-{dead.pid}-00000000.tmp",
        "live": tmp_path / f".hs-{host}-{os.getpid()}-00000000.tmp",
        "other-host-new": tmp_path / f".hs-{'0' * 8 if host != '0' * 8 else '1' * 8}-1-00000000.tmp",
        "old-naming-old": tmp_path / f".clip.flac.{'b' * 32}.tmp",
        "old-naming-new": tmp_path / f".part.parquet.{'c' * 32}.tmp",
        "not-a-temp": tmp_path / ".hidden.tmp",
    }
    for p in names.values():
        p.write_bytes(b"")
    os.utime(names["old-naming-old"], (time.time() - 7200,) * 2)
    assert tempfiles.sweep(tmp_path) == 2
    assert {k for k, p in names.items() if p.exists()} == {"live", "other-host-new", "old-naming-new", "not-a-temp"}

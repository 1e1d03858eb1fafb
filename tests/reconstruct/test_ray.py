"""The Ray Data executor: same rows and audio as the local one, resumable after an interruption."""
import os

import numpy as np
import pytest
import soundfile as sf

import manifests
from reconstruct.config import RunConfig
from reconstruct.run import run

IGNORED = {"created_at", "run_id", "path", "file_mtime_ns"}  # file_mtime_ns: when each run wrote its file


def _config(corpus, out, executor, **kw):
    return RunConfig(corpus=str(corpus), out=str(out), methods=("codec", "vocoder"),
                     models=("opus", "griffinlim"), params=(("n_iter", 4),), executor=executor,
                     workers=2, batch_size=2, **kw)


def _rows(out):
    rows = manifests.read(out / "manifest").to_pylist()
    return {r["utt_id"]: {k: v for k, v in r.items() if k not in IGNORED} for r in rows}


def test_ray_and_local_give_the_same_rows_and_audio(ray_session, corpus, tmp_path):
    run(_config(corpus, tmp_path / "ray", "ray"), echo=lambda s: None)
    run(_config(corpus, tmp_path / "local", "local"), echo=lambda s: None)
    ray_rows, local_rows = _rows(tmp_path / "ray"), _rows(tmp_path / "local")
    assert ray_rows == local_rows
    assert sum(r["kind"] == "reconstruction" for r in ray_rows.values()) == 12
    for f in (tmp_path / "local" / "audio").rglob("*.flac"):
        other = tmp_path / "ray" / f.relative_to(tmp_path / "local")
        assert np.array_equal(sf.read(f)[0], sf.read(other)[0])


def test_three_methods_with_ray_then_interrupted_rerun_completes(ray_session, corpus, tmp_path):
    out = tmp_path / "out"
    cfg = RunConfig(corpus=str(corpus), out=str(out), methods=("codec", "vocoder", "diffusion"),
                    models=("opus", "griffinlim"), params=(("n_iter", 4), ("steps", 5), ("gl_iters", 4)),
                    executor="ray", workers=2, batch_size=2)
    pytest.importorskip("reconstruct.backends.mel_diffusion")
    summary = run(cfg, echo=lambda s: None)
    rows = manifests.read(out / "manifest").to_pylist()
    recon = [r for r in rows if r["kind"] == "reconstruction"]
    assert len(recon) == 6 * 3 and all(r["status"] == "ok" for r in recon)
    assert {r["method"] for r in recon} == {"codec", "vocoder", "diffusion"}
    assert summary.failure_rate == 0
    # lose a third of the work as an interrupted job would, then re-run: it fills exactly the gap
    keep = [r for r in manifests.read(out / "manifest").to_pylist() if r["model"] != "opus"]
    for part in manifests.part_files(out / "manifest"):
        os.remove(part)
    manifests.write(manifests.to_table(keep, out / "manifest"), out / "manifest" / "manifest.parquet")
    summary = run(cfg, echo=lambda s: None)
    assert summary.tallies["opus"].ok == 6 and summary.tallies["griffinlim@n_iter=4"].skipped == 6
    ids = manifests.read(out / "manifest")["utt_id"].to_pylist()
    assert len(ids) == len(set(ids)) == 6 + 18


def test_gpus_requested_on_a_cpu_cluster_is_a_usage_error(ray_session, corpus, tmp_path):
    from manifests.errors import UsageError

    cfg = RunConfig(corpus=str(corpus), out=str(tmp_path / "o"), models=("opus",), executor="ray",
                    gpus_per_worker=0.5)
    with pytest.raises(UsageError, match="has 0 GPUs"):
        run(cfg, echo=lambda s: None)


def test_an_address_that_does_not_answer_fails_fast(corpus, tmp_path):
    import time

    from click.testing import CliRunner

    from reconstruct.cli import main

    start = time.monotonic()
    r = CliRunner().invoke(main, ["run", "--model", "opus", "--corpus", str(corpus), "--out", str(tmp_path / "o"),
                                  "--ray-address", "ray://127.0.0.1:9"])
    assert r.exit_code == 2 and "does not answer" in r.output
    assert time.monotonic() - start < 60


def _worker_pids() -> list[int]:
    import psutil

    return [p.pid for p in psutil.process_iter(["cmdline"])
            if any("PlanFileWorker" in part for part in (p.info["cmdline"] or [])[:1])]


def test_a_killed_worker_is_restarted_and_the_run_completes(ray_session, corpus, tmp_path):
    """kill -9 of one actor process mid-run: Ray restarts it, its batch is redone, nothing is lost or doubled."""
    import os
    import signal
    import threading
    import time

    out = tmp_path / "out"
    cfg = RunConfig(corpus=str(corpus), out=str(out), models=("griffinlim",), params=(("n_iter", 200),),
                    executor="ray", workers=2, batch_size=1)
    killed: list[int] = []  # parts on disk when the worker was killed

    def kill_one_worker_mid_run():
        deadline = time.time() + 120
        while time.time() < deadline:
            pids, parts = _worker_pids(), len(list((out / "manifest").glob("part-*.parquet")))
            if pids and parts >= 1:
                os.kill(pids[0], signal.SIGKILL)
                killed.append(parts)
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_one_worker_mid_run)
    killer.start()
    summary = run(cfg, echo=lambda s: None)
    killer.join()
    assert killed and killed[0] < 6, f"the kill should land mid-run (parts then: {killed})"
    assert summary.tallies["griffinlim@n_iter=200"].ok == 6 and summary.failure_rate == 0
    table = manifests.read(out / "manifest")
    ids = table["utt_id"].to_pylist()
    assert len(ids) == len(set(ids)) == 12 and set(table["status"].to_pylist()) == {"ok"}
    assert all(sf.info(p).frames > 0 for p in table["path"].to_pylist())

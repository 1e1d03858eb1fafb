"""`reconstruct run` with corpus and output in an object store (local S3 / GCS emulators)."""
import numpy as np
from click.testing import CliRunner

import manifests
from detector.training.data import load_clips
from manifests import storage
from manifests.audio import load_audio
from manifests.cli import main as manifests_main
from reconstruct.cli import main
from reconstruct.config import RunConfig
from reconstruct.run import run

from ..conftest import upload

IGNORED = {"created_at", "run_id", "path", "file_mtime_ns"}  # when each copy was written


def _rows(manifest) -> dict:
    return {r["utt_id"]: {k: v for k, v in r.items() if k not in IGNORED}
            for r in manifests.read(manifest).to_pylist()}


def _invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_run_from_bucket_to_bucket_matches_a_local_run(bucket, corpus, tmp_path):
    upload(corpus, f"{bucket}/corpus")
    args = ["run", "--model", "griffinlim", "--param", "n_iter=4", "--executor", "local"]
    r = _invoke(*args, "--corpus", f"{bucket}/corpus", "--out", f"{bucket}/out")
    assert r.exit_code == 0, r.output
    assert f"manifest: {bucket}/out/manifest" in r.output
    assert _invoke(*args, "--corpus", corpus, "--out", tmp_path / "local").exit_code == 0
    remote, local = _rows(f"{bucket}/out/manifest"), _rows(tmp_path / "local" / "manifest")
    assert remote == local and len(remote) == 12
    # one compacted part; audio mirrors the corpus tree; every path resolves back to an object
    parts = manifests.part_files(f"{bucket}/out/manifest")
    assert len(parts) == 1 and storage.name(parts[0]).startswith("manifest-")
    table = manifests.read(f"{bucket}/out/manifest").to_pylist()
    for row in table:
        wav, sr = load_audio(row["path"])
        assert sr == row["sample_rate"] and wav.size == row["num_samples"]
        assert storage.sha256(row["path"]) == row["sha256"]
    recon = [x["path"] for x in table if x["kind"] == "reconstruction"]
    assert all(p.startswith(f"{bucket}/out/audio/griffinlim@n_iter=4/") for p in recon)
    # nothing but the audio and the manifest under the output (no temp or probe objects)
    left = {p for p, k in storage.entries(f"{bucket}/out", recursive=True) if k == "file"}
    assert left == set(recon) | set(manifests.part_files(f"{bucket}/out/manifest"))
    # the re-run skips all six and the manifest CLI and the detector read the same URI
    again = _invoke(*args, "--corpus", f"{bucket}/corpus", "--out", f"{bucket}/out")
    assert again.exit_code == 0 and "      6 " in again.output
    v = CliRunner().invoke(manifests_main, ["validate", f"{bucket}/out/manifest"])
    assert v.exit_code == 0 and "12" in v.output, v.output
    clips = load_clips([f"{bucket}/out/manifest"])
    assert len(clips) == 12 and {c.label for c in clips} == {0, 1}


def test_ray_workers_read_and_write_the_bucket(ray_session, s3_bucket, corpus):
    bucket = s3_bucket
    upload(corpus, f"{bucket}/corpus")
    cfg = RunConfig(corpus=f"{bucket}/corpus", out=f"{bucket}/out", models=("griffinlim", "opus"),
                    params=(("n_iter", 4),), executor="ray", workers=2, batch_size=2)
    summary = run(cfg, echo=lambda s: None)
    assert all(t.ok == 6 and t.failed == 0 for t in summary.tallies.values())
    rows = manifests.read(f"{bucket}/out/manifest").to_pylist()
    assert len(rows) == 18 and all(r["status"] == "ok" for r in rows)
    wav, _ = load_audio(next(r["path"] for r in rows if r["model"] == "opus"))
    assert np.isfinite(wav).all() and wav.size > 0


def test_missing_bucket_or_corpus_in_a_store_exits_2(bucket, corpus):
    missing = bucket.split("://")[0] + "://no-such-bucket-hardspoof"
    r = _invoke("run", "--model", "griffinlim", "--executor", "local", "--corpus", corpus, "--out", f"{missing}/out")
    assert r.exit_code == 2, r.output
    assert r.output.count("\n") == 1 and f"bucket {missing} does not exist" in r.output
    r = _invoke("run", "--model", "griffinlim", "--executor", "local", "--corpus", f"{bucket}/nothing", "--out", "x")
    assert r.exit_code == 2 and "corpus not found" in r.output


def test_kill_9_mid_run_into_a_bucket_then_rerun_completes(s3_bucket, corpus):
    import os
    import signal
    import subprocess
    import sys
    import time

    import soundfile as sf

    upload(corpus, f"{s3_bucket}/corpus")
    out = f"{s3_bucket}/out"
    args = ["run", "--model", "griffinlim", "--param", "n_iter=150", "--executor", "local", "--batch-size", "1",
            "--corpus", f"{s3_bucket}/corpus", "--out", out]
    proc = subprocess.Popen([sys.executable, "-m", "reconstruct.cli", *args], env=dict(os.environ, HARDSPOOF_NO_BAR="1"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def parts() -> list[str]:
        return [p for p, _ in storage.entries(f"{out}/manifest") if storage.name(p).startswith("part-")]

    deadline = time.time() + 120
    while time.time() < deadline and len(parts()) < 2:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 2 <= len(parts()) < 6, "the kill should land mid-run"
    for p, k in storage.entries(f"{out}/audio", recursive=True):  # every object there is a whole file
        if k == "file":
            assert sf.info(storage.readable(p)).frames == 16000, p
    r = _invoke(*args)
    assert r.exit_code == 0, r.output
    table = manifests.read(f"{out}/manifest")
    ids = table["utt_id"].to_pylist()
    assert len(ids) == len(set(ids)) == 12 and set(table["status"].to_pylist()) == {"ok"}

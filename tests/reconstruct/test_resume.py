"""Resume keyed on what made a clip, a resume that reads no audio, rolled parts, and two runs on one --out."""
import os
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import soundfile as sf
from click.testing import CliRunner

import manifests
from manifests import io as manifest_io
from reconstruct import worker as worker_mod
from reconstruct.cli import main
from tests.conftest import speechlike, write_corpus


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def opus(corpus, out, *extra):
    return invoke("run", "--method", "codec", "--model", "opus", "--corpus", corpus, "--out", out,
                  "--executor", "local", *extra)


def rows_of(out: Path) -> list[dict]:
    return manifests.read(out / "manifest").to_pylist()


def test_another_seed_stops_with_one_line_naming_it(corpus, tmp_path):
    out = tmp_path / "out"
    assert opus(corpus, out, "--seed", "1").exit_code == 0
    before = rows_of(out)
    r = opus(corpus, out, "--seed", "2")
    assert r.exit_code == 2 and "--seed" in r.output and len(r.output.strip().splitlines()) == 1, r.output
    assert rows_of(out) == before  # nothing written, nothing lost


def test_other_parameters_stop_and_equal_parameters_are_one_variant(corpus, tmp_path):
    out = tmp_path / "out"
    assert opus(corpus, out, "--param", "bitrate_kbps=12").exit_code == 0
    first = {r["utt_id"]: r for r in rows_of(out) if r["kind"] == "reconstruction"}
    again = opus(corpus, out, "--param", "bitrate_kbps=12.0")  # the same parameters, typed once as a float
    assert again.exit_code == 0, again.output
    after = {r["utt_id"]: r for r in rows_of(out) if r["kind"] == "reconstruction"}
    assert after.keys() == first.keys() and {r["model"] for r in after.values()} == {"opus"}
    assert [after[u]["created_at"] for u in first] == [first[u]["created_at"] for u in first]  # not redone
    other = opus(corpus, out, "--param", "bitrate_kbps=24")
    # another value is another variant of its own, never mixed into the first
    assert other.exit_code == 0, other.output
    variants = {r["params"] for r in rows_of(out) if r["kind"] == "reconstruction"}
    assert len(variants) == 2


def test_other_weights_stop_with_one_line(tmp_path):
    from reconstruct.fit import FitConfig, fit_mel_diffusion

    corpus = write_corpus(tmp_path / "corpus", n_bonafide=2, n_spoof=0, seconds=0.3)
    ckpts = []
    for seed in (1, 2):
        ckpts.append(tmp_path / f"ckpt{seed}")
        fit_mel_diffusion(FitConfig(corpus=str(corpus), out=str(ckpts[-1]), steps=1, batch_size=2, crop_frames=16,
                                    channels=(8, 16, 16), seed=seed), progress=False)
    fast = ["--param", "steps=4", "--param", "strength=0.5", "--param", "gl_iters=2"]
    out = tmp_path / "out"
    args = ["run", "--method", "diffusion", "--model", "mel-diffusion", "--corpus", corpus, "--out", out,
            "--executor", "local", *fast]
    assert invoke(*args, "--checkpoint", ckpts[0]).exit_code == 0
    r = invoke(*args, "--checkpoint", ckpts[1])
    assert r.exit_code == 2 and "other weights" in r.output and len(r.output.strip().splitlines()) == 1, r.output


def test_another_corpus_with_the_same_names_stops_instead_of_pairing_wrong_audio(tmp_path):
    a = write_corpus(tmp_path / "a", n_bonafide=3, n_spoof=0)
    b = tmp_path / "b"
    shutil.copytree(a, b)
    for i, f in enumerate(sorted(b.rglob("*.flac"))):
        sf.write(f, speechlike(0.5, seed=50 + i, f0=300), 16000)  # same names, other audio
    out = tmp_path / "out"
    assert opus(a, out).exit_code == 0
    before = rows_of(out)
    r = opus(b, out)
    assert r.exit_code == 2 and "changed" in r.output and "another --out" in r.output, r.output
    assert rows_of(out) == before


def test_a_resume_reads_no_audio(corpus, tmp_path, monkeypatch):
    """A resume of a finished run reads the listing and the manifest only: audio replaced by garbage of the
    same size and mtime goes unnoticed, and nothing is described, hashed or decoded."""
    out = tmp_path / "out"
    assert opus(corpus, out).exit_code == 0
    before = rows_of(out)
    for f in Path(corpus).rglob("*.flac"):
        st = f.stat()
        f.write_bytes(b"\0" * st.st_size)
        os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))

    def no_audio(*a, **k):
        raise AssertionError("a resume opened audio")

    monkeypatch.setattr(worker_mod, "describe", no_audio)
    monkeypatch.setattr(worker_mod, "load_audio", no_audio)
    monkeypatch.setattr(manifests.storage, "sha256", no_audio)
    r = opus(corpus, out)
    assert r.exit_code == 0, r.output
    assert rows_of(out) == before


def test_a_resume_finds_finished_clips_whatever_the_order_of_the_listing_and_of_out(tmp_path, monkeypatch):
    """A corpus table in descending utt_id order, OUT's rows in yet another order, plan chunks of 2 clips, two
    models: a resume redoes exactly the reconstructions taken out of OUT, and nothing else."""
    import pyarrow as pa

    from manifests import listing

    corpus = write_corpus(tmp_path / "corpus", n_bonafide=5, n_spoof=2, seconds=0.3)
    lines = (corpus / "protocol.csv").read_text().splitlines()
    (corpus / "protocol.csv").write_text("\n".join([lines[0], *sorted(lines[1:], reverse=True)]) + "\n")
    out = tmp_path / "out"
    two = ("--model", "vorbis")
    assert opus(corpus, out, *two).exit_code == 0
    parts = sorted((out / "manifest").glob("*.parquet"))
    stored = pa.concat_tables([pq.read_table(p) for p in parts], promote_options="permissive")
    recon = [i for i, k in enumerate(stored["kind"].to_pylist()) if k == "reconstruction"]
    taken = {stored["utt_id"][recon[1]].as_py(), stored["utt_id"][recon[-2]].as_py()}
    keep = [i for i in range(stored.num_rows) if stored["utt_id"][i].as_py() not in taken]
    shuffled = stored.take(pa.array(keep[1::2][::-1] + keep[0::2]))  # neither the listing's order nor the run's
    for p in parts:
        p.unlink()
    pq.write_table(shuffled, out / "manifest" / "part-shuffled.parquet")
    before = {r["utt_id"]: r["created_at"] for r in rows_of(out)}

    monkeypatch.setattr(listing, "CHUNK", 2)
    r = opus(corpus, out, *two)
    assert r.exit_code == 0, r.output
    after = {r["utt_id"]: r["created_at"] for r in rows_of(out)}
    assert after.keys() == before.keys() | taken and len(after) == stored.num_rows
    assert {u for u in after if after[u] != before.get(u)} == taken  # only those were made again


def test_a_source_touched_since_is_described_again_and_its_reconstruction_kept(corpus, tmp_path):
    """Same audio, new mtime: the original's row is re-described (new identity), its finished reconstruction
    (same audio, checked by sha256) is kept, not redone."""
    out = tmp_path / "out"
    assert opus(corpus, out).exit_code == 0
    src = sorted(Path(corpus).rglob("*.flac"))[0]
    uid = str(src.relative_to(corpus).with_suffix(""))
    before = {r["utt_id"]: r for r in rows_of(out)}
    st = src.stat()
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    r = opus(corpus, out)
    assert r.exit_code == 0, r.output
    after = {r["utt_id"]: r for r in rows_of(out)}
    assert after[uid]["file_mtime_ns"] == st.st_mtime_ns + 10**9 != before[uid]["file_mtime_ns"]
    assert after[uid]["sha256"] == before[uid]["sha256"]
    recon = f"{uid}__opus"
    assert after[recon]["created_at"] == before[recon]["created_at"]  # not redone
    untouched = [u for u in before if u != uid and before[u]["kind"] == "original"]
    assert all(after[u]["created_at"] == before[u]["created_at"] for u in untouched)


def test_retry_failed_redoes_failed_reconstructions_and_a_plain_resume_keeps_them(corpus, tmp_path, monkeypatch):
    from reconstruct.backends import get

    cls = get("opus")
    real, calls = cls.reconstruct, []

    def fail_first(self, *a, **k):  # a transient failure of the first clip
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("transient")
        return real(self, *a, **k)

    monkeypatch.setattr(cls, "reconstruct", fail_first)
    out = tmp_path / "out"
    assert opus(corpus, out, "--max-failure-rate", "0.5").exit_code == 0
    failed = [r["utt_id"] for r in rows_of(out) if r["kind"] == "reconstruction" and r["status"] == "failed"]
    assert len(failed) == 1
    monkeypatch.setattr(cls, "reconstruct", real)
    assert opus(corpus, out, "--max-failure-rate", "0.5").exit_code == 0  # a plain resume keeps the failed row
    assert {r["utt_id"]: r["status"] for r in rows_of(out)}[failed[0]] == "failed"
    assert opus(corpus, out, "--retry-failed").exit_code == 0
    assert {r["utt_id"]: r["status"] for r in rows_of(out)}[failed[0]] == "ok"


def test_workers_roll_small_parts_into_parts_of_a_row_budget(tmp_path, monkeypatch):
    corpus = write_corpus(tmp_path / "corpus", n_bonafide=12, n_spoof=0, seconds=0.2)
    out = tmp_path / "out"
    monkeypatch.setattr(worker_mod, "ROLL_ROWS", 6)
    monkeypatch.setattr(worker_mod.ReconstructWorker.__init__, "__defaults__",
                        worker_mod.ReconstructWorker.__init__.__defaults__[:-1] + (6,))
    seen: list[list[str]] = []
    monkeypatch.setattr(manifests, "compact", lambda folder, *a, **k: seen.append(
        sorted(p.name for p in Path(folder).glob("*.parquet"))))
    r = opus(corpus, out, "--batch-size", "1")
    assert r.exit_code == 0, r.output
    parts = seen[0]
    sizes = [pq.read_metadata(out / "manifest" / p).num_rows for p in parts]
    # 24 rows (12 originals + 12 reconstructions) in batches of 2 rows: 12 batches, but parts of >= 6 rows
    assert sum(sizes) == 24 and len(parts) <= 4 and all(n >= 6 for n in sizes[:-1]), (parts, sizes)


def _recon_rows(n: int, tag: str) -> list[dict]:
    rows = []
    for i in range(n):
        rows.append(dict(manifests.empty_row(), utt_id=f"{tag}{i}", path=f"{tag}{i}.flac", label="bonafide",
                         kind="original", source_id=f"{tag}{i}", attack="-", status="ok"))
    return rows


def test_two_compactions_interleaved_lose_no_row(tmp_path, monkeypatch):
    """The issue's interleaving, forced: run A's compaction has read the parts and not yet written when run B
    writes its rows and compacts (deleting A's parts). Every row of both runs survives."""
    folder = tmp_path / "manifest"
    manifests.write_part(_recon_rows(20, "a"), folder, "part-a1")
    manifests.write_part(_recon_rows(20, "b"), folder, "part-a2")
    real_write = manifest_io.storage.write_atomic
    state = {"interleaved": False}

    def pause_then_write(dest, write):
        if not state["interleaved"] and Path(str(dest)).name.startswith("manifest-"):
            state["interleaved"] = True  # B runs in A's window: its rows land and B compacts everything
            manifests.write_part(_recon_rows(20, "c"), folder, "part-b1")
            manifests.compact(folder)
        return real_write(dest, write)

    monkeypatch.setattr(manifest_io.storage, "write_atomic", pause_then_write)
    manifests.compact(folder)
    assert state["interleaved"]
    ids = manifests.read(folder)["utt_id"].to_pylist()
    assert sorted(ids) == sorted(f"{t}{i}" for t in "abc" for i in range(20))
    assert len(list(folder.glob("*.parquet"))) == 1


def test_two_runs_on_one_out_keep_every_row_and_file(tmp_path, monkeypatch):
    """Two `reconstruct run`s (two models) on one --out, the second running entirely inside the first's
    compaction window: both exit 0, every clip of both has its row, and every audio file its row."""
    corpus = write_corpus(tmp_path / "corpus", n_bonafide=6, n_spoof=0, seconds=0.3)
    out = tmp_path / "out"
    real_compact = manifest_io._compact_once
    state = {"started": False, "second": None}

    def compact_with_a_second_run_inside(folder, name, batch_rows):
        real_write = manifest_io.storage.write_atomic

        def window(dest, write):
            if not state["started"]:
                state["started"] = True
                manifest_io.storage.write_atomic = real_write
                state["second"] = invoke("run", "--method", "codec", "--model", "vorbis", "--corpus", corpus,
                                         "--out", out, "--executor", "local")
            return real_write(dest, write)

        manifest_io.storage.write_atomic = window
        try:
            return real_compact(folder, name, batch_rows)
        finally:
            manifest_io.storage.write_atomic = real_write

    monkeypatch.setattr(manifest_io, "_compact_once", compact_with_a_second_run_inside)
    first = opus(corpus, out)
    assert first.exit_code == 0, first.output
    assert state["second"] is not None and state["second"].exit_code == 0, state["second"].output
    rows = rows_of(out)
    recons = [r for r in rows if r["kind"] == "reconstruction"]
    assert sorted((r["model"], r["source_id"]) for r in recons) == \
        sorted((m, f"bonafide/spk{i % 2}/utt{i}") for m in ("opus", "vorbis") for i in range(6))
    written = {str(p) for p in (out / "audio").rglob("*") if p.is_file()}
    assert written == {r["path"] for r in recons}  # no orphaned file, no row without its file
    assert all(r["status"] == "ok" for r in rows)


def test_a_grid_makes_one_variant_per_point_in_one_manifest(corpus, tmp_path):
    out = tmp_path / "out"
    r = opus(corpus, out, "--grid", "bitrate_kbps=6,12,24.0")
    assert r.exit_code == 0, r.output
    recons = [r for r in rows_of(out) if r["kind"] == "reconstruction"]
    by_variant = {}
    for row in recons:
        by_variant.setdefault(row["utt_id"].split("__", 1)[1], set()).add(row["source_id"])
    assert len(by_variant) == 3 and all(len(s) == 6 for s in by_variant.values()), by_variant
    import json
    assert sorted({json.loads(r["params"])["bitrate_kbps"] for r in recons}) == [6, 12, 24]
    # the same grid again resumes: nothing is redone
    again = opus(corpus, out, "--grid", "bitrate_kbps=6,12,24")
    assert again.exit_code == 0, again.output
    assert sorted(r["created_at"] for r in rows_of(out) if r["kind"] == "reconstruction") == \
        sorted(r["created_at"] for r in recons)


@pytest.mark.parametrize("args,needle", [
    (["--grid", "bitrate_kbps"], "is not key=v1,v2"),
    (["--grid", "nonsense=1,2"], "no selected model has parameter 'nonsense'"),
    (["--grid", "bitrate_kbps=6,12", "--param", "bitrate_kbps=6"], "both as --param and as --grid"),
])
def test_bad_grids_are_one_line_exit_2(corpus, tmp_path, args, needle):
    r = opus(corpus, tmp_path / "out", *args)
    assert r.exit_code == 2 and needle in r.output and len(r.output.strip().splitlines()) == 1, r.output


@pytest.mark.parametrize("start", [2, 3, 65_536])
def test_kept_rows_survive_growth_and_a_repeated_key_keeps_its_winner(monkeypatch, start):
    import numpy as np
    import pyarrow as pa

    from reconstruct import resume

    monkeypatch.setattr(resume._Kept, "START", start)  # arrays that must grow (and copy) between batches
    kept = resume._Kept()
    batches = [([0, 1, 2], ["ok", "failed", "ok"], [5, 5, 5], np.array([10, 11, 12])),
               ([3, 1], ["ok", "ok"], [5, 1], np.array([13.0, 14.5])),  # key 1 again, ok, older: ok wins anyway
               ([4], ["failed"], [9], np.array([15]))]
    for key, status, created, seed in batches:
        t = pa.table({"status": status, "created_at": pa.array(created, pa.int64())})
        kept.add(np.array(key), t, seed=seed)
    won = kept.winners()
    order = np.argsort(won["key"])
    assert won["key"][order].tolist() == [0, 1, 2, 3, 4]
    assert won["seed"][order].tolist() == [10, 14.5, 12, 13, 15]  # int then float batches: one float column
    assert won["ok"][order].tolist() == [True, True, True, True, False]


def test_kept_rows_with_every_key_once_come_back_as_added(monkeypatch):
    import numpy as np
    import pyarrow as pa

    from reconstruct import resume

    monkeypatch.setattr(resume._Kept, "START", 2)
    kept = resume._Kept()
    for key in ([7, 3], [5], [0, 9, 1]):
        kept.add(np.array(key), pa.table({"status": ["ok"] * len(key), "created_at": pa.array([1] * len(key), pa.int64())}),
                 seed=np.array(key) * 10)
    won = kept.winners()
    assert won["key"].tolist() == [7, 3, 5, 0, 9, 1] and won["seed"].tolist() == [70, 30, 50, 0, 90, 10]


def test_a_resume_that_redescribes_finished_clips_loses_no_batch_of_the_pending_ones(tmp_path):
    """A killed run's leftovers (its first batch committed, orphan audio of its second batch) and finished clips
    whose sources must be described again (touched since: a describe-only task in the same listing chunk as the
    pending clips): the resume makes every pending clip (the describe-only plan file once wrote over the first
    plan file of the pending ones, under the same name: that batch was never run, counted nowhere, exit 0)."""
    corpus = write_corpus(tmp_path / "corpus", n_bonafide=16, n_spoof=2, seconds=0.3)
    out = tmp_path / "out"
    args = ["--seed", "0", "--select", "split=train", "--select", "label=bonafide", "--batch-size", "2"]
    killed = opus(corpus, out, *args, "--limit", "2")  # the killed run's committed first batch
    assert killed.exit_code == 0, killed.output
    firsts = [r for r in rows_of(out) if r["kind"] == "original"]
    assert len(firsts) == 2
    sources = sorted(Path(corpus).rglob("*.flac"))
    made = sorted((out / "audio").rglob("*.flac"))
    orphan = made[0].parent / "utt8.flac"  # the second batch's first clip: audio written, no row (killed)
    shutil.copy(made[0], orphan)
    for r in firsts:  # the corpus touched since (copied, synced): same audio, new mtime
        src = next(s for s in sources if str(s).endswith(r["utt_id"] + ".flac"))
        st = src.stat()
        os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    r = opus(corpus, out, *args)
    assert r.exit_code == 0, r.output
    line = next(x for x in r.output.splitlines() if x.startswith("opus"))
    todo, skipped, ok, failed = (int(v) for v in line.split()[1:5])
    assert (todo, skipped, ok, failed) == (8, 2, 6, 0), r.output
    final = manifests.read(out / "manifest").to_pylist()
    selected = {str(s.relative_to(corpus).with_suffix("")) for s in sources if "bonafide/spk0/" in str(s)}
    assert len(selected) == 8
    for kind, ids in (("original", selected), ("reconstruction", {f"{u}__opus" for u in selected})):
        got = [x["utt_id"] for x in final if x["kind"] == kind]
        assert sorted(got) == sorted(ids), kind  # each once
    assert all(x["status"] == "ok" for x in final)
    on_disk = {str(p) for p in (out / "audio").rglob("*.flac")}
    assert on_disk == {x["path"] for x in final if x["kind"] == "reconstruction"}  # no orphan left unreferenced


def test_a_batch_the_executor_never_returns_is_counted_failed_and_the_run_exits_1(corpus, tmp_path, monkeypatch):
    """Whatever loses a batch between plan and driver, the summary still adds up (the lost ones counted failed,
    with why), the run exits 1, and no row is written for them: the same command again makes them."""
    from reconstruct import executors

    real = executors.plan_batches

    def drop_first_batch(*a, **k):
        stream = real(*a, **k)
        next(stream)  # never run
        yield from stream

    out = tmp_path / "out"
    monkeypatch.setattr(executors, "plan_batches", drop_first_batch)
    r = opus(corpus, out, "--batch-size", "2")
    assert r.exit_code == 1 and "2 planned reconstruction(s) got no row" in r.output, r.output
    line = next(x for x in r.output.splitlines() if x.startswith("opus"))
    assert [int(v) for v in line.split()[1:5]] == [6, 0, 4, 2], r.output
    assert "no row came back" in r.output
    monkeypatch.setattr(executors, "plan_batches", real)
    again = opus(corpus, out)
    assert again.exit_code == 0, again.output
    line = next(x for x in again.output.splitlines() if x.startswith("opus"))
    assert [int(v) for v in line.split()[1:5]] == [6, 4, 2, 0], again.output
    assert len(rows_of(out)) == 12 and all(x["status"] == "ok" for x in rows_of(out))

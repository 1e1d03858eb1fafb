"""`manifests export --format lhotse` read back by the real lhotse, and lhotse CutSets as a corpus."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from manifests.cli import main
from manifests.errors import UsageError
from manifests.export_lhotse import export_lhotse
from manifests.interop import clip_path, is_cutset, is_hf_folder, read_cutset
from tests.conftest import speechlike

from .exportable import exportable_manifest, ok_rows

lhotse = pytest.importorskip("lhotse")


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    return exportable_manifest(tmp_path / "src", n_bonafide=4, n_spoof=2)


def test_cutset_per_split_with_custom_fields(manifest, tmp_path):
    out = tmp_path / "lh"
    report = export_lhotse(manifest, out)
    want = ok_rows(manifest)
    assert report["splits"] == {"train": 5, "dev": 5} and not report["skipped"]
    seen = set()
    for split in ("train", "dev"):
        cuts = lhotse.CutSet.from_file(out / f"hardspoof_cuts_{split}.jsonl.gz")
        recs = lhotse.RecordingSet.from_file(out / f"hardspoof_recordings_{split}.jsonl.gz")
        sups = lhotse.SupervisionSet.from_file(out / f"hardspoof_supervisions_{split}.jsonl.gz")
        assert len(cuts) == len(recs) == len(sups)
        for cut in cuts:
            src = want[cut.id]
            sup = cut.supervisions[0]
            assert (sup.custom["label"], sup.custom["attack"], sup.custom["source_id"]) == \
                (src["label"], src["attack"], src["source_id"])
            assert sup.custom.get("method") == src["method"] and sup.custom.get("model") == src["model"]
            assert sup.speaker == src["speaker"] and sup.language == src["language"]
            source = cut.recording.sources[0]
            assert source.type == "file" and Path(source.source).read_bytes() == Path(src["path"]).read_bytes()
            assert cut.duration == pytest.approx(src["duration_s"], abs=1e-6)
            wav, _ = sf.read(src["path"], dtype="float32")
            np.testing.assert_allclose(cut.load_audio()[0], wav, atol=1e-6)
            seen.add(cut.id)
    assert seen == set(want)  # reconstructions without a split went to their source's split; failed rows left out


def test_round_trip_through_read_cutset(manifest, tmp_path):
    out = tmp_path / "lh"
    export_lhotse(manifest, out)
    assert is_cutset(out) and is_cutset(out / "hardspoof_cuts_dev.jsonl.gz") and not is_hf_folder(out)
    assert not is_cutset(manifest) and not is_cutset(tmp_path / "src" / "corpus")
    want = ok_rows(manifest)
    rows = read_cutset(out)
    assert {r["utt_id"] for r in rows} == set(want)
    for r in rows:
        src = want[r["utt_id"]]
        for col in ("path", "label", "kind", "source_id", "method", "model", "attack", "split", "speaker", "sha256",
                    "seed", "params", "snr_db", "lsd_db"):
            assert r[col] == src[col], col
    assert not (tmp_path / "lh-audio").exists()  # whole files are used where they lie: nothing written
    dev = read_cutset(out / "hardspoof_cuts_dev.jsonl.gz", originals_only=True)
    assert dev and all(r["kind"] == "original" and r["split"] == "dev" for r in dev)


def _recording(path: Path, rid: str):
    sf.write(path, speechlike(1.0, seed=len(rid)), 16000)
    return lhotse.Recording.from_file(path, recording_id=rid)


def test_generic_cutsets_segments_memory_and_commands(tmp_path):
    """A CutSet as lhotse recipes make them: no labels (all bona fide), a segment of a recording and a resampled
    recording (decoded by lhotse and written as FLAC), a command source (never run)."""
    whole = _recording(tmp_path / "a.flac", "a")
    seg = _recording(tmp_path / "b.flac", "b")
    resampled = _recording(tmp_path / "c.flac", "c").resample(8000)
    cmd = lhotse.Recording(id="d", sources=[lhotse.AudioSource(type="command", channels=[0], source="touch PWNED")],
                           sampling_rate=16000, num_samples=16000, duration=1.0)
    sup = lambda rid, start, dur: lhotse.SupervisionSegment(id=rid, recording_id=rid, start=start, duration=dur,  # noqa: E731
                                                            speaker="spk-" + rid, language="cs")
    cuts = [lhotse.MonoCut(id="a", start=0, duration=1.0, channel=0, recording=whole, supervisions=[sup("a", 0, 1.0)]),
            lhotse.MonoCut(id="b", start=0.25, duration=0.5, channel=0, recording=seg, supervisions=[sup("b", 0.25, 0.5)]),
            lhotse.MonoCut(id="c", start=0, duration=1.0, channel=0, recording=resampled, supervisions=[sup("c", 0, 1.0)]),
            lhotse.MonoCut(id="d", start=0, duration=1.0, channel=0, recording=cmd, supervisions=[])]
    path = tmp_path / "corpus_cuts_train.jsonl.gz"
    lhotse.CutSet.from_cuts(cuts).to_file(path)
    rows = {r["utt_id"]: r for r in read_cutset(path, audio_dir=tmp_path / "audio")}
    assert all(r["label"] == "bonafide" and r["split"] == "train" for r in rows.values())
    assert rows["a"]["path"] == str(tmp_path / "a.flac") and rows["a"]["speaker"] == "spk-a"
    assert rows["b"]["path"] == clip_path(str(tmp_path / "audio"), "b", ".flac") and rows["b"]["num_samples"] == 8000
    b, _ = sf.read(rows["b"]["path"], dtype="float32")
    full, _ = sf.read(tmp_path / "b.flac", dtype="float32")
    np.testing.assert_allclose(b, full[4000:12000], atol=1e-4)
    assert (rows["c"]["sample_rate"], rows["c"]["num_samples"]) == (8000, 8000)  # lhotse's transform applied
    assert rows["d"]["status"] == "failed" and "shell command" in rows["d"]["error"]
    assert not Path("PWNED").exists() and not (tmp_path / "PWNED").exists()


def test_cutset_with_some_labels_is_refused(tmp_path):
    recs = [_recording(tmp_path / f"{k}.flac", k) for k in ("x", "y")]
    cuts = [lhotse.MonoCut(id=r.id, start=0, duration=r.duration, channel=0, recording=r, supervisions=[
        lhotse.SupervisionSegment(id=r.id, recording_id=r.id, start=0, duration=r.duration,
                                  custom={"label": "fake"} if r.id == "x" else None)]) for r in recs]
    lhotse.CutSet.from_cuts(cuts).to_file(tmp_path / "cuts.jsonl.gz")
    with pytest.raises(UsageError, match="y has no label"):
        read_cutset(tmp_path / "cuts.jsonl.gz")


def test_clip_path_never_leaves_audio_dir(tmp_path):
    root = str(tmp_path / "audio")
    assert clip_path(root, "spk/utt1", ".flac") == str(tmp_path / "audio/spk/utt1.flac")
    for bad in ("../../etc/passwd", "/etc/passwd", "a/../../b", "tab\there", "a//b"):
        p = clip_path(root, bad, ".wav")
        assert Path(p).resolve().is_relative_to(Path(root)) and p.endswith(".wav")


def test_cli_lhotse_export(manifest, tmp_path):
    r = CliRunner().invoke(main, ["export", "--format", "lhotse", "--manifest", str(manifest), "--out", str(tmp_path / "lh")])
    assert r.exit_code == 0 and "10 clips (train 5, dev 5)" in r.output, r.output
    r = CliRunner().invoke(main, ["export", "--format", "lhotse", "--manifest", str(tmp_path / "nope"), "--out",
                                  str(tmp_path / "lh2")])
    assert r.exit_code == 2 and "not found" in r.output


def test_missing_lhotse_names_the_extra(monkeypatch, tmp_path):
    import sys

    monkeypatch.setitem(sys.modules, "lhotse", None)
    with pytest.raises(UsageError, match=r"hardspoof\[interop\]"):
        read_cutset(tmp_path)


def test_a_cutset_is_a_corpus(manifest, tmp_path):
    """`manifests import` and `reconstruct run --corpus` accept an exported CutSet folder as it is."""
    from manifests.corpus import import_corpus, list_corpus

    out = tmp_path / "lh"
    export_lhotse(manifest, out)
    want = ok_rows(manifest)
    assert {r["utt_id"]: r["source_id"] for r in import_corpus(out)} == {u: w["source_id"] for u, w in want.items()}
    originals = sorted(u for u, w in want.items() if w["kind"] == "original")
    assert sorted(list_corpus(out)["utt_id"].to_pylist()) == originals

import numpy as np
import pytest
import soundfile as sf

from manifests.corpus import import_corpus
from manifests.errors import UsageError

from ..conftest import speechlike
from .test_protocols import SAMPLES


def test_folder_is_recursive_and_all_bonafide(tmp_path):
    for rel in ("a/x.wav", "a/b/y.flac", "z.ogg"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        sf.write(tmp_path / rel, speechlike(0.2), 16000)
    (tmp_path / "notes.txt").write_text("not audio")
    rows = import_corpus(tmp_path)
    assert sorted(r["utt_id"] for r in rows) == ["a/b/y", "a/x", "z"]
    assert {r["label"] for r in rows} == {"bonafide"} and {r["kind"] for r in rows} == {"original"}
    assert all(r["status"] == "ok" and r["sample_rate"] == 16000 and len(r["sha256"]) == 64 for r in rows)


def test_table_with_protocol_columns(corpus):
    rows = import_corpus(corpus)  # a folder with protocol.csv is read through it
    assert len(rows) == 6
    spoof = [r for r in rows if r["label"] == "spoof"]
    assert {r["attack"] for r in spoof} == {"A01", "A02"}
    assert {r["split"] for r in rows} == {"train", "dev"}
    assert all(r["source_id"] == r["utt_id"] for r in rows)


def test_unreadable_clip_is_a_failed_row_not_a_crash(corpus):
    (corpus / "bonafide/spk0/utt0.flac").write_bytes(b"RIFF....garbage")
    rows = {r["utt_id"]: r for r in import_corpus(corpus)}
    assert rows["bonafide/spk0/utt0"]["status"] == "failed"
    assert "cannot decode" in rows["bonafide/spk0/utt0"]["error"]
    assert sum(r["status"] == "ok" for r in rows.values()) == 5


def test_asvspoof_protocol(tmp_path):
    audio = tmp_path / "flac"
    audio.mkdir()
    lines = []
    for i, (label, attack) in enumerate([("bonafide", "-"), ("spoof", "A01"), ("spoof", "A02")]):
        sf.write(audio / f"LA_T_{i}.flac", speechlike(0.2, seed=i), 16000)
        lines.append(f"LA_00{i} LA_T_{i} - {attack} {label}")
    proto = tmp_path / "ASVspoof2019.LA.cm.train.trn.txt"
    proto.write_text("\n".join(lines) + "\n")
    rows = import_corpus(proto, audio_dir=audio)
    assert [r["attack"] for r in rows] == ["-", "A01", "A02"]
    assert {r["split"] for r in rows} == {"train"} and rows[0]["speaker"] == "LA_000"


def test_malformed_protocol_line_names_the_line(tmp_path):
    proto = tmp_path / "p.txt"
    proto.write_text("LA_0 LA_T_0 - - bonafide\nLA_0 LA_T_1 - A01\n")
    with pytest.raises(UsageError, match=r"line 2: expected 5 fields"):
        import_corpus(proto, audio_dir=tmp_path)


@pytest.mark.parametrize("content,match", [
    ("path\nx.wav\n", "lacks column"),
    ("path,label\nx.wav,maybe\n", "label 'maybe'"),
    ("path,label\n../../etc/passwd,bonafide\n", "outside the corpus root"),
    ("path,label\n/etc/passwd,bonafide\n", "outside the corpus root"),
])
def test_bad_tables_are_usage_errors(tmp_path, content, match):
    (tmp_path / "c.csv").write_text(content)
    with pytest.raises(UsageError, match=match):
        import_corpus(tmp_path / "c.csv")


def test_duplicate_ids_and_empty_and_missing(tmp_path):
    sf.write(tmp_path / "a.wav", np.zeros(100, np.float32), 16000)
    (tmp_path / "c.csv").write_text("utt_id,path,label\nx,a.wav,bonafide\nx,a.wav,spoof\n")
    with pytest.raises(UsageError, match="duplicate utt_id 'x'"):
        import_corpus(tmp_path / "c.csv")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="no audio files"):
        import_corpus(tmp_path / "empty")
    with pytest.raises(UsageError, match="corpus not found"):
        import_corpus(tmp_path / "missing")


def test_demo_corpus_is_shipped():
    rows = import_corpus("demo")
    assert len(rows) >= 20 and {r["label"] for r in rows} == {"bonafide", "spoof"}
    assert all(r["status"] == "ok" for r in rows)


def test_odd_folder_entries_are_skipped_and_counted(tmp_path, caplog):
    sf.write(tmp_path / "good.wav", speechlike(0.2), 16000)
    (tmp_path / "dir.wav").mkdir()
    (tmp_path / "a.wav").symlink_to(tmp_path / "b.wav")
    (tmp_path / "b.wav").symlink_to(tmp_path / "a.wav")
    (tmp_path / "loop").symlink_to(tmp_path)
    open(bytes(tmp_path) + b"/caf\xe9.wav", "wb").write(b"RIFF")
    (tmp_path / "text.wav").write_text("not audio at all")
    with caplog.at_level("WARNING", logger="hardspoof.corpus"):
        rows = {r["utt_id"]: r for r in import_corpus(tmp_path)}
    assert set(rows) == {"good", "text"}
    assert rows["text"]["status"] == "failed" and "cannot decode" in rows["text"]["error"]
    log = caplog.text
    assert "1 folder(s) named like audio files" in log and "1 file(s) whose name is not valid UTF-8" in log
    assert "2 broken or looping symlink(s)" in log


@pytest.mark.parametrize("layout,name,home,text", SAMPLES)
def test_each_asvspoof_release_imports_with_its_audio_found(tmp_path, layout, name, home, text):
    """2019 LA, 2021 LA/DF keys and ASVspoof 5 protocols, in their published column layouts and release trees:
    the audio folder is found where the release keeps it, labels, attacks and splits come from the protocol."""
    from manifests.corpus import list_corpus
    from manifests.protocols import PROTOCOLS, parse

    release = tmp_path / "release"
    proto = release / home / name
    proto.parent.mkdir(parents=True)
    proto.write_text(text)
    expected = parse(text, layout, name)
    folder = release / PROTOCOLS[layout].audio[expected[0]["split"]][0]
    folder.mkdir(parents=True)
    for i, r in enumerate(expected):
        sf.write(folder / f"{r['utt_id']}.flac", speechlike(0.1, seed=i), 16000)
    rows = import_corpus(proto)
    assert [(r["utt_id"], r["label"], r["attack"], r["split"], r["speaker"]) for r in rows] == \
        [(e["utt_id"], e["label"], e["attack"], e["split"], e["speaker"]) for e in expected]
    assert all(r["status"] == "ok" and r["path"] == str(folder / f"{r['utt_id']}.flac") for r in rows)
    assert list_corpus(proto)["utt_id"].to_pylist() == [e["utt_id"] for e in expected]


def test_protocol_whose_audio_is_nowhere_names_the_option(tmp_path):
    proto = tmp_path / "ASVspoof5.train.tsv"
    proto.write_text("T_4850 T_0000000000 F - - - AC3 A05 spoof -\n")
    with pytest.raises(UsageError, match="cannot find the audio folder of ASVspoof5.train.tsv.*--audio-dir"):
        import_corpus(proto)

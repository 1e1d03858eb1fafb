"""A folder corpus lists only originals that live in it (issue 29, cases 3 and 4): another run's output folder
is left out wherever it lies, a symlink that leads out of the root is not followed (as in protocol mode), and
every skip is counted and named."""

import pytest
import soundfile as sf
from click.testing import CliRunner

import manifests
from manifests.corpus import audio_in_folder, list_corpus
from manifests.errors import UsageError
from reconstruct.cli import main as reconstruct
from tests.conftest import speechlike


def _clips(folder, *names):
    folder.mkdir(parents=True, exist_ok=True)
    for i, n in enumerate(names):
        sf.write(folder / n, speechlike(0.3, seed=i), 16000)
    return folder


def _run(corpus, out):
    return CliRunner().invoke(reconstruct, ["run", "--model", "opus", "--executor", "local", "--corpus", str(corpus),
                                            "--out", str(out)])


def test_a_second_out_inside_the_corpus_does_not_import_the_first_outs_audio(tmp_path):
    corpus = _clips(tmp_path / "c", "a.wav", "b.wav")
    assert _run(corpus, corpus / "out").exit_code == 0
    r = _run(corpus, corpus / "out2")
    assert r.exit_code == 0, r.output
    originals = [x for x in manifests.read(corpus / "out2" / "manifest").to_pylist() if x["kind"] == "original"]
    assert sorted(x["utt_id"] for x in originals) == ["a", "b"]
    assert "hardspoof output folder(s)" in r.output and ": out" in r.output


def test_a_run_output_given_as_the_corpus_is_refused_naming_its_manifest(tmp_path):
    corpus = _clips(tmp_path / "c", "a.wav")
    assert _run(corpus, tmp_path / "out").exit_code == 0
    with pytest.raises(UsageError, match="hardspoof output folder"):
        list_corpus(tmp_path / "out")


def test_a_folder_with_a_foreign_manifest_folder_is_still_read(tmp_path):
    corpus = _clips(tmp_path / "c", "a.wav")
    _clips(corpus / "sub", "b.wav")
    (corpus / "sub" / "manifest").mkdir()
    (corpus / "sub" / "manifest" / "notes.parquet").write_bytes(b"not parquet")
    assert list_corpus(corpus)["utt_id"].to_pylist() == ["a", "sub/b"]


def test_symlinks_out_of_the_root_are_skipped_and_named(tmp_path, caplog):
    corpus = _clips(tmp_path / "c", "a.wav", "in.wav")
    other = _clips(tmp_path / "other", "x.wav")
    (tmp_path / "secret.wav").write_bytes(b"RIFF not really")
    (corpus / "x.wav").symlink_to(other / "x.wav")
    (corpus / "passwd.wav").symlink_to(tmp_path / "secret.wav")
    (corpus / "also.wav").symlink_to(corpus / "in.wav")  # inside the root: followed
    (corpus / "linked").symlink_to(other)
    with caplog.at_level("WARNING", logger="hardspoof.corpus"):
        ids = list_corpus(corpus)["utt_id"].to_pylist()
    assert ids == ["a", "also", "in"]
    assert "skipped 2 symlink(s) leading outside the corpus folder" in caplog.text
    assert "passwd.wav, x.wav" in caplog.text
    assert "skipped 1 symlinked folder(s), not followed" in caplog.text and ": linked" in caplog.text
    assert len(audio_in_folder(corpus, allow_outside_root=True)) == 5
    assert list_corpus(corpus, allow_outside_root=True).num_rows == 5


def test_reconstruct_run_never_opens_a_symlinked_file_out_of_the_root(tmp_path, monkeypatch):
    corpus = _clips(tmp_path / "c", "a.wav")
    (corpus / "passwd.wav").symlink_to("/etc/passwd")
    r = _run(corpus, tmp_path / "o")
    assert r.exit_code == 0, r.output
    assert [x["utt_id"] for x in manifests.read(tmp_path / "o" / "manifest").to_pylist()] == ["a", "a__opus"]
    assert "passwd.wav" in r.output


def test_an_output_killed_before_its_first_part_is_known_by_its_marker(tmp_path):
    """`reconstruct run` marks OUT/manifest/ before any audio is written, so audio of a run killed before its
    first manifest part is not read as originals either."""
    corpus = _clips(tmp_path / "c", "a.wav")
    _clips(corpus / "out" / "audio" / "opus", "a.flac")
    manifests.io.mark(corpus / "out" / "manifest")
    assert list_corpus(corpus)["utt_id"].to_pylist() == ["a"]

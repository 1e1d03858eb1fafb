"""Every kind of broken input gives a result for each good clip and a reason for each bad one."""
import csv
import io
import pickle
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import manifests
from manifests.audio import AudioError, load_audio
from manifests.corpus import import_corpus
from manifests.errors import UsageError
from reconstruct.cli import main as reconstruct

from .badinput import CASES, make_bad_corpus, markdown_table

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bad_run(tmp_path_factory):
    root = make_bad_corpus(tmp_path_factory.mktemp("bad") / "corpus")
    out = root.parent / "out"
    r = CliRunner().invoke(reconstruct, ["run", "--model", "griffinlim", "--param", "n_iter=2", "--corpus", str(root),
                                         "--out", str(out), "--executor", "local", "--max-failure-rate", "1"])
    return root, out, r


def test_every_case_gives_what_the_table_says(bad_run):
    root, out, r = bad_run
    assert r.exit_code == 0, r.output
    rows = manifests.read(out / "manifest").to_pylist()
    originals = {Path(x["path"]).name: x for x in rows if x["kind"] == "original"}
    recon = {x["source_id"]: x for x in rows if x["kind"] == "reconstruction"}
    assert recon["good"]["status"] == "ok"
    for label, name, _, expect, _ in CASES:
        kind, _, why = expect.partition(": ")
        if kind == "skipped":
            assert name not in originals, label
            assert why in r.output, label
            continue
        orig = originals[name]
        outcome = recon.get(orig["utt_id"]) if orig["status"] == "ok" else orig
        assert outcome is not None, label
        assert outcome["status"] == ("ok" if kind == "ok" else "failed"), (label, outcome["error"])
        if kind == "failed":
            assert why in outcome["error"], (label, outcome["error"])
        else:
            assert outcome["num_samples"] == orig["num_samples"] and outcome["sample_rate"] == orig["sample_rate"]


def test_detector_score_on_the_folder_gives_what_the_table_says(bad_run, tmp_path):
    from detector.cli import main as detector
    from tests.detector.conftest import make_manifest
    from tests.detector.test_cli import TINY

    root, _, _ = bad_run
    manifest = make_manifest(tmp_path / "train")
    assert CliRunner().invoke(detector, ["train", "--manifest", str(manifest), "--out", str(tmp_path / "run"),
                                         *map(str, TINY)]).exit_code == 0
    r = CliRunner().invoke(detector, ["score", "--checkpoint", str(tmp_path / "run"), "--input", str(root),
                                      "--out", str(tmp_path / "s.tsv"), "--no-progress"])
    assert r.exit_code == 0, r.output
    body = (tmp_path / "s.tsv").read_text().split("\n", 1)[1]  # line 1: the comment; names may hold tabs, newlines
    rows = {f[0]: f for f in list(csv.reader(io.StringIO(body, newline=""), delimiter="\t"))[1:]}
    assert rows["good.wav"][2] and not rows["good.wav"][4]
    assert len(rows) == 1 + sum(not c[4].startswith("skipped") for c in CASES)  # good.wav + each case not skipped
    for label, name, _, _, expect in CASES:
        kind, _, why = expect.partition(": ")
        if kind == "skipped":
            assert name not in rows and why in r.output, label
            continue
        score, error = rows[name][2], rows[name][4]
        if kind == "score":
            assert score and not error, (label, error)
        else:
            assert not score and why in error, (label, error)


def test_no_partial_or_nan_file_is_left(bad_run):
    _, out, _ = bad_run
    import numpy as np
    import soundfile as sf

    files = list((out / "audio").rglob("*"))
    assert not [f for f in files if f.name.startswith(".")]
    for f in files:
        if f.is_file():
            assert np.isfinite(sf.read(f)[0]).all()


def test_docs_table_is_generated_from_these_cases():
    assert markdown_table() in (ROOT / "docs/bad-input.md").read_text()


def test_protocol_problems_are_exit_2(tmp_path):
    (tmp_path / "a.wav").write_bytes(b"")
    for content, message in [("utt_id,path,label\nx,a.wav,bonafide\nx,a.wav,bonafide\n", "duplicate utt_id"),
                             ("path,label\n../../etc/passwd,bonafide\n", "outside the corpus root"),
                             ("path,label\n/etc/passwd,bonafide\n", "outside the corpus root")]:
        (tmp_path / "p.csv").write_text(content)
        r = CliRunner().invoke(reconstruct, ["run", "--model", "opus", "--corpus", str(tmp_path / "p.csv"),
                                             "--out", str(tmp_path / "o"), "--executor", "local"])
        assert r.exit_code == 2 and message in r.output and "Traceback" not in r.output
    assert not (tmp_path / "o").exists()


def test_outside_root_is_allowed_on_request(tmp_path, corpus):
    (tmp_path / "p.csv").write_text(f"path,label\n{corpus}/bonafide/spk0/utt0.flac,bonafide\n")
    rows = import_corpus(tmp_path / "p.csv", allow_outside_root=True)
    assert rows[0]["status"] == "ok"


def test_a_pickle_that_runs_code_is_refused(tmp_path, monkeypatch):
    """A state dict file whose unpickling would call os.system is refused, and nothing runs."""
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            import os
            return os.system, (f"touch {marker}",)

    store = tmp_path / "store" / "encodec-24khz"
    store.mkdir(parents=True)
    with open(store / "encodec_24khz.th", "wb") as fh:
        pickle.dump({"weight": Evil()}, fh)
    monkeypatch.setenv("HARDSPOOF_MODELS", str(tmp_path / "store"))
    from reconstruct.backends import get

    with pytest.raises(Exception, match=r"(?i)weights.only|unpickl|refus"):
        get("encodec-24khz")()
    assert not marker.exists()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=2048), suffix=st.sampled_from([".wav", ".flac", ".ogg", ".mp3"]))
def test_loader_on_random_bytes_returns_audio_or_a_clear_error(tmp_path, data, suffix):
    path = tmp_path / f"x{suffix}"
    path.write_bytes(data)
    try:
        wav, sr = load_audio(path)
    except AudioError as e:
        assert str(e) and "\n" not in str(e)
    else:
        import numpy as np
        assert wav.ndim == 1 and wav.dtype == np.float32 and np.isfinite(wav).all() and sr > 0


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60), max_size=6))
def test_protocol_import_on_random_lines_never_tracebacks(tmp_path, lines):
    proto = tmp_path / "random.txt"
    proto.write_text("\n".join(lines), encoding="utf-8")
    try:
        rows = import_corpus(proto, audio_dir=tmp_path)
    except UsageError as e:
        assert str(e) and re.search(r"\S", str(e))
    else:
        assert all(r["status"] in ("ok", "failed") for r in rows)

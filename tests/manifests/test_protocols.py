"""ASVspoof protocol layouts on synthetic lines in each published column order (no real protocol files)."""
import string

import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

from manifests.errors import UsageError
from manifests.protocols import PROTOCOLS, audio_candidates, detect, parse

from ..conftest import speechlike

# (layout, official file name, its folder in the release, text): bona fide and spoof lines each.
SAMPLES = [
    ("asvspoof2019-la", "ASVspoof2019.LA.cm.train.trn.txt", "ASVspoof2019_LA_cm_protocols",
     "LA_0079 LA_T_1138215 - - bonafide\nLA_0079 LA_T_1271820 - A01 spoof\n"),
    ("asvspoof2021-la", "trial_metadata.txt", "keys/LA/CM",
     "LA_0009 LA_E_9332881 alaw ita_tx A07 spoof notrim eval\n"
     "LA_0021 LA_E_7310647 none - bonafide bonafide only_speech hidden\n"
     "LA_0012 LA_E_1000001 opus loc_tx A13 spoof notrim progress\n"),
    ("asvspoof2021-df", "trial_metadata.txt", "keys/DF/CM",
     "LA_0023 DF_E_2000011 nocodec asvspoof A14 spoof notrim progress traditional_vocoder - - - -\n"
     "TEF2 DF_E_2000013 low_m4a vcc2020 Task1-team20 spoof notrim eval neural_vocoder_nonautoregressive"
     " Task1 team20 FF E\n"
     "LA_0031 DF_E_3000001 mp3m4a asvspoof bonafide bonafide notrim eval bonafide - - - -\n"),
    ("asvspoof5", "ASVspoof5.train.tsv", "ASVspoof5_protocols",
     "T_4850 T_0000000000 F - - - AC3 A05 spoof -\nT_3734 T_0000000011 F - - - - bonafide bonafide -\n"),
    ("asvspoof5", "ASVspoof5.dev.track_1.tsv", "ASVspoof5_protocols",
     "D_0461 D_0000000190 M - - - - bonafide bonafide -\nD_4461 D_0000000169 F - - - AC1 A14 spoof -\n"),
    # eval: codec columns filled (CODEC_Q "0" when uncoded, CODEC_SEED = the original's FLAC name when coded)
    ("asvspoof5", "ASVspoof5.eval.track_1.tsv", "ASVspoof5_protocols",
     "E_0101 E_0000000001 F C05 3 E_0000123456 AC2 A17 spoof -\nE_0202 E_0000000002 M - 0 - - bonafide bonafide -\n"),
]


@pytest.mark.parametrize("layout,name,home,text", SAMPLES)
def test_each_layout_is_detected_and_parsed(layout, name, home, text):
    lines = text.splitlines()
    assert detect(lines, name) == layout
    assert detect(lines, "renamed.txt") == layout  # the columns decide, not the name
    rows = parse(text, layout, f"{home}/{name}")
    assert [r["utt_id"] for r in rows] == [line.split()[1] for line in lines]
    assert {r["label"] for r in rows} == {"bonafide", "spoof"}
    assert all(r["attack"] == "-" for r in rows if r["label"] == "bonafide")
    assert all(r["attack"] not in ("-", "bonafide") for r in rows if r["label"] == "spoof")
    assert {r["language"] for r in rows} == {"en"} and len({r["split"] for r in rows}) == 1
    keys = [k for k in PROTOCOLS[layout].keys if k and k not in ("utt_id", "speaker", "attack", "label")]
    assert all(list(r["extra"]) == keys for r in rows)


def test_extra_fields_and_splits_per_layout():
    la = parse(SAMPLES[1][3], "asvspoof2021-la", "trial_metadata.txt")
    assert la[1] == {"utt_id": "LA_E_7310647", "speaker": "LA_0021", "attack": "-", "label": "bonafide",
                     "split": "eval", "language": "en",
                     "extra": {"codec": "none", "transmission": "-", "trim": "only_speech", "subset": "hidden"}}
    df = parse(SAMPLES[2][3], "asvspoof2021-df", "trial_metadata.txt")
    assert df[1]["attack"] == "Task1-team20" and df[1]["split"] == "eval"
    assert df[1]["extra"] == {"codec": "low_m4a", "source": "vcc2020", "trim": "notrim", "subset": "eval",
                              "vocoder_type": "neural_vocoder_nonautoregressive", "task": "Task1", "team": "team20",
                              "gender_pair": "FF", "target_language": "E"}
    ev = parse(SAMPLES[5][3], "asvspoof5", "ASVspoof5.eval.track_1.tsv")
    assert ev[0] == {"utt_id": "E_0000000001", "speaker": "E_0101", "attack": "A17", "label": "spoof",
                     "split": "eval", "language": "en",
                     "extra": {"gender": "F", "codec": "C05", "codec_q": "3", "codec_seed": "E_0000123456",
                               "attack_tag": "AC2"}}
    assert ev[1]["extra"]["codec_q"] == "0" and ev[1]["attack"] == "-"
    assert {r["split"] for r in parse(SAMPLES[3][3], "asvspoof5", "ASVspoof5.train.tsv")} == {"train"}
    # a renamed file: the split comes from the T_/D_/E_ trial ids
    assert {r["split"] for r in parse(SAMPLES[4][3], "asvspoof5", "mine.tsv")} == {"dev"}


@pytest.mark.parametrize("name,split", [("ASVspoof2019.LA.cm.train.trn.txt", "train"),
                                        ("ASVspoof2019.LA.cm.dev.trl.txt", "dev"),
                                        ("ASVspoof2019.LA.cm.eval.trl.txt", "eval")])
def test_2019_layout_parses_as_import_asvspoof_does(name, split):
    text = "LA_0079 LA_T_1138215 - - bonafide\nLA_0079 LA_T_1271820 - A01 spoof\n\nLA_0080 LA_T_1 - A02 spoof\n"
    assert detect(text.splitlines(), name) == "asvspoof2019-la"
    rows = parse(text, "asvspoof2019-la", name)
    assert [(r["speaker"], r["utt_id"], r["attack"], r["label"], r["split"], r["language"]) for r in rows] == [
        ("LA_0079", "LA_T_1138215", "-", "bonafide", split, "en"),
        ("LA_0079", "LA_T_1271820", "A01", "spoof", split, "en"),
        ("LA_0080", "LA_T_1", "A02", "spoof", split, "en")]
    assert all(r["extra"] == {} for r in rows)


def test_2019_parity_with_the_current_importer(tmp_path):
    corpus = pytest.importorskip("manifests.corpus")  # the importer as it reads 2019 protocols today
    (tmp_path / "flac").mkdir()
    lines = []
    for i, (label, attack) in enumerate([("bonafide", "-"), ("spoof", "A01"), ("Spoof", "A02"), ("bonafide", "A03")]):
        sf.write(tmp_path / "flac" / f"LA_T_{i}.flac", speechlike(0.1, seed=i), 16000)
        lines.append(f"LA_00{i} LA_T_{i} - {attack} {label}")
    proto = tmp_path / "ASVspoof2019.LA.cm.train.trn.txt"
    proto.write_text("\n".join(lines) + "\n")
    keys = ("utt_id", "speaker", "attack", "label", "split", "language")
    old = [tuple(r[k] for k in keys) for r in corpus.import_corpus(proto, audio_dir=tmp_path / "flac")]
    new = [tuple(r[k] for k in keys) for r in parse(proto.read_text(), "asvspoof2019-la", proto.name)]
    assert new == old


@pytest.mark.parametrize("text", [
    "path,label,speaker\nx.wav,bonafide,s1\n",
    "path\tlabel\nx.wav\tbonafide\n",
    "path\tlabel\tspeaker\tattack\tsplit\nx.wav\tbonafide\ts1\t-\ttrain\n",
    "utt\tspeaker\t-\tattack\tlabel\nLA_T_1\tLA_0079\t-\t-\tbonafide\n",
    "SPEAKER_ID FLAC_FILE_NAME SPEAKER_GENDER CODEC CODEC_Q CODEC_SEED ATTACK_TAG ATTACK_LABEL KEY TMP\n"
    "T_4850 T_0000000000 F - - - AC3 A05 spoof -\n",
    "speaker trial codec transmission attack key trim subset\nLA_0009 LA_E_9332881 alaw ita_tx A07 spoof notrim eval\n",
    "E_0101 E_0000000001 F A11 spoof\n",  # ASVspoof 5 track-2 trial list: 5 fields, not 2019 LA
    "PA_0079 PA_T_0000001 aaa - bonafide\n",  # ASVspoof 2019 PA (not an LA layout)
    "LA_E_9332881\nLA_E_6866159\n",  # ASVspoof 2021 list without keys
    "T_4850 T_0000000000 F - A05 spoof\n",  # ASVspoof 5 challenge-phase metadata.txt (6 fields)
    "", "\n  \n",
])
def test_tables_headers_and_other_lists_are_not_protocols(text):
    assert detect(text.splitlines(), "protocol.txt") is None


def test_every_examined_line_must_fit():
    lines = SAMPLES[0][3].splitlines() + ["LA_0079 LA_T_9 - A01 maybe"]
    assert detect(lines, SAMPLES[0][1]) is None


@pytest.mark.parametrize("layout,text,match", [
    ("asvspoof2021-la", "LA_0009 LA_E_1 alaw ita_tx A07 spoof notrim eval\n\nLA_0009 LA_E_2 alaw A07 spoof notrim eval",
     r"trial_metadata.txt line 3: expected 8 fields 'speaker trial codec transmission attack key trim subset' "
     r"\(asvspoof2021-la\), got 7"),
    ("asvspoof2019-la", "LA_0 LA_T_0 - - bonafide\nLA_0 LA_T_1 - A01\n", r"line 2: expected 5 fields"),
    ("asvspoof5", "T_1 T_0000000001 F - - - - bonafide bonafide - extra\n", r"line 1: expected 10 fields .*asvspoof5"),
    ("asvspoof2021-df", "LA_0023 DF_E_1 nocodec asvspoof A14 spoof notrim eval traditional_vocoder - - -\n",
     r"line 1: expected 13 fields .*gender-pair language' \(asvspoof2021-df\), got 12"),
    ("asvspoof2021-la", "LA_0007-alaw LA_E_5-alaw alaw ita_tx bonafide target notrim eval\n",
     r"line 1: key 'target' is not one of bonafide, spoof \(asvspoof2021-la\)"),
    ("asvspoof2019-la", "LA_0 LA_T_0 - - bonafide\nLA_0 LA_T_1 - A01 spoof\nLA_0 LA_T_0 - A01 spoof\n",
     r"line 3: duplicate utt_id 'LA_T_0' \(first on line 1"),
    ("asvspoof2019-la", "LA_0 ../../etc/passwd - - bonafide\n", r"line 1: trial id '../../etc/passwd' is not a file"),
    ("asvspoof-2019-la", "", r"unknown protocol layout 'asvspoof-2019-la' \(did you mean asvspoof2019-la\?\)"),
])
def test_bad_lines_are_usage_errors_naming_file_line_and_layout(layout, text, match):
    with pytest.raises(UsageError, match=match):
        parse(text, layout, "keys/LA/CM/trial_metadata.txt")


def test_audio_candidates_are_relative_and_start_at_the_official_place():
    assert audio_candidates("LA/ASVspoof2019_LA_cm_protocols", "asvspoof2019-la", "dev")[0] == \
        "../ASVspoof2019_LA_dev/flac"
    assert audio_candidates("keys/LA/CM", "asvspoof2021-la", None)[0] == "../../../ASVspoof2021_LA_eval/flac"
    assert audio_candidates("data/keys/DF/CM", "asvspoof2021-df", "eval")[0] == "../../../ASVspoof2021_DF_eval/flac"
    assert audio_candidates("ASVspoof5_protocols", "asvspoof5", "eval")[0] == "../flac_E_eval"
    anywhere = audio_candidates("somewhere", "asvspoof5", None)
    assert anywhere[:3] == ["flac_T", "ASVspoof5_train/flac_T", "flac_D"] and anywhere[-2:] == ["flac", "."]
    for layout in PROTOCOLS:
        found = audio_candidates("x", layout, None)
        assert len(found) == len(set(found)) and not any(c.startswith("/") for c in found)
    with pytest.raises(UsageError, match="split 'test' is not one of train, dev, eval"):
        audio_candidates("x", "asvspoof5", "test")


@pytest.mark.parametrize("layout,name,home,text", SAMPLES)
def test_importer_call_sequence_on_an_official_tree(tmp_path, layout, name, home, text):
    """detect -> parse -> first existing audio_candidates folder -> every UTT.flac there."""
    release = tmp_path / "release"
    proto = release / home / name
    proto.parent.mkdir(parents=True)
    proto.write_text(text)
    found = detect(proto.read_text().splitlines()[:20], proto.name)
    rows = parse(proto.read_text(), found, proto.name)
    split = rows[0]["split"]
    official = release / PROTOCOLS[layout].audio[split][0]
    official.mkdir(parents=True)
    for r in rows:
        (official / f"{r['utt_id']}.flac").write_bytes(b"")
    folder = next(proto.parent / c for c in audio_candidates(str(proto.parent), found, split)
                  if (proto.parent / c).is_dir())
    assert folder.resolve() == official.resolve()
    assert all((folder / f"{r['utt_id']}.flac").is_file() for r in rows)


TOKENS = st.one_of(st.sampled_from(["-", "bonafide", "spoof", "Spoof", "A07", "LA_T_1", "T_0000000001", "F", "M",
                                    "eval", "hidden", "0", "C05", "..", "a/b", "path", "label", ",", "\ufeff"]),
                   st.text(alphabet=string.printable + "éßЖ\x00\x85\u2028", min_size=1, max_size=6))
SEPS = st.sampled_from([" ", "  ", "\t", " \t ", "\x0b", "\u3000"])
LINES = st.lists(st.lists(TOKENS, max_size=14).flatmap(
    lambda tokens: SEPS.map(lambda sep: sep.join(tokens))), max_size=12)


@settings(max_examples=300, deadline=None)
@given(lines=LINES, name=st.text(max_size=30), ending=st.sampled_from(["\n", "\r\n", "\r"]))
def test_random_lines_never_raise_anything_but_usage_error(lines, name, ending):
    assert detect(lines, name) in (None, *PROTOCOLS)
    for layout in PROTOCOLS:
        try:
            rows = parse(ending.join(lines), layout, name)
        except UsageError:
            continue
        assert all(r["label"] in ("bonafide", "spoof") and r["language"] == "en" for r in rows)


@settings(max_examples=100, deadline=None)
@given(data=st.data(), layout=st.sampled_from(SAMPLES))
def test_any_well_formed_protocol_is_detected_and_every_line_parsed(data, layout):
    name, filename, _, text = layout
    templates = text.splitlines()
    n = data.draw(st.integers(1, 30))
    lines = []
    for i in range(n):
        fields = data.draw(st.sampled_from(templates)).split()
        fields[1] = f"{fields[1]}{i}"  # unique trial ids
        lines.append(" ".join(fields))
    assert detect(lines[:20], filename) == name
    assert [r["utt_id"] for r in parse("\n".join(lines), name, filename)] == [line.split()[1] for line in lines]

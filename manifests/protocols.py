"""ASVspoof protocol files -> plain dicts: pure functions of text and names, no file I/O.

Every layout is whitespace-separated, one trial per line, no header row (`PROTOCOLS[name].source`
says where each is documented):

  asvspoof2019-la  ASVspoof2019.LA.cm.{train.trn,dev.trl,eval.trl}.txt                   5 fields
      SPEAKER_ID AUDIO_FILE_NAME - SYSTEM_ID KEY
      LA_0079 LA_T_1271820 - A01 spoof
  asvspoof2021-la  keys/LA/CM/trial_metadata.txt (LA-keys-full.tar.gz)                    8 fields
      speaker trial codec transmission attack key trim subset
      LA_0009 LA_E_9332881 alaw ita_tx A07 spoof notrim eval
  asvspoof2021-df  keys/DF/CM/trial_metadata.txt (DF-keys-full.tar.gz)                   13 fields
      speaker trial codec source attack key trim subset vocoder task team gender-pair language
      LA_0023 DF_E_2000011 nocodec asvspoof A14 spoof notrim progress traditional_vocoder - - - -
  asvspoof5        ASVspoof5.train.tsv, ASVspoof5.dev.track_1.tsv, ASVspoof5.eval.track_1.tsv  10 fields
      SPEAKER_ID FLAC_FILE_NAME SPEAKER_GENDER CODEC CODEC_Q CODEC_SEED ATTACK_TAG ATTACK_LABEL KEY TMP
      T_4850 T_0000000000 F - - - AC3 A05 spoof -

Bona fide trials carry attack "-" (2019) or "bonafide" (2021, ASVspoof 5); both become "-". In
ASVspoof 5 train/dev every CODEC, CODEC_Q, CODEC_SEED is "-"; in eval an uncoded trial has CODEC "-"
and CODEC_Q "0", a coded one C01-C11, 1-8 and the original's FLAC name. Values are kept as published.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from .errors import UsageError
from .schema import LABEL_SPELLINGS, SPLIT_SPELLINGS

_LABELS = LABEL_SPELLINGS
_LABEL = "|".join(map(re.escape, _LABELS))
_SPLIT_IN_NAME = re.compile(r"\.(trn|trl|dev|eval|train)\b")  # the regex import_asvspoof reads 2019 names with
_SPLIT_WORDS = SPLIT_SPELLINGS
_SPLIT_IN_ID = re.compile(r"(?:LA_)?([TDE])_\d")  # LA_T_1138215 (2019), T_0000000000 (ASVspoof 5)
_CORE = ("utt_id", "speaker", "attack", "label")
SPLITS = ("train", "dev", "eval")


@dataclass(frozen=True)
class Layout:
    name: str
    fields: tuple[str, ...]  # published column names, in file order
    keys: tuple[str, ...]  # each column as a core key (utt_id, speaker, attack, label), an `extra` key, or "" (dropped)
    patterns: dict[int, str]  # column -> regex that every data line fully matches (detection)
    files: str  # regex of the official protocol file names (detection tie-breaker)
    home: str  # folder holding the protocol in the official archives, relative to the release root
    audio: dict[str, tuple[str, ...]]  # split -> audio folders (UTT.flac) relative to the release root
    about: str  # what each file is, and where the layout is documented
    split: str | None = None  # the split of every line, where the release has only one


PROTOCOLS: dict[str, Layout] = {layout.name: layout for layout in (
    Layout("asvspoof2019-la", ("SPEAKER_ID", "AUDIO_FILE_NAME", "-", "SYSTEM_ID", "KEY"),
           ("speaker", "utt_id", "", "attack", "label"), {2: "-", 4: _LABEL},
           r"ASVspoof2019\.LA\.cm\.", "ASVspoof2019_LA_cm_protocols",
           {s: (f"ASVspoof2019_LA_{s}/flac",) for s in SPLITS},
           "cm.train.trn = train, cm.dev.trl = dev, cm.eval.trl = eval; column 3 is '-' in LA (PA puts its "
           "environment there, so PA files are not taken for LA). "
           "Source: README.LA.txt of the ASVspoof 2019 database (Edinburgh DataShare 10283/3336)"),
    Layout("asvspoof2021-la", ("speaker", "trial", "codec", "transmission", "attack", "key", "trim", "subset"),
           ("speaker", "utt_id", "codec", "transmission", "attack", "label", "trim", "subset"),
           {5: _LABEL, 7: "eval|progress|hidden"}, r"trial_metadata|LA", "keys/LA/CM",
           {"eval": ("ASVspoof2021_LA_eval/flac",)},
           "keys of the evaluation set, the only 2021 partition (train/dev are ASVspoof 2019 LA's); subset "
           "eval|progress|hidden, official results use subset eval. Source: asvspoof-challenge/2021 "
           "eval-package/README.md and config.py (ConfigLA.p_names)", "eval"),
    Layout("asvspoof2021-df", ("speaker", "trial", "codec", "source", "attack", "key", "trim", "subset", "vocoder",
                               "task", "team", "gender-pair", "language"),
           ("speaker", "utt_id", "codec", "source", "attack", "label", "trim", "subset", "vocoder_type",
            "task", "team", "gender_pair", "target_language"),
           {5: _LABEL, 7: "eval|progress|hidden"}, r"trial_metadata|DF", "keys/DF/CM",
           {"eval": ("ASVspoof2021_DF_eval/flac",)},
           "keys of the evaluation set, as for LA; source asvspoof|vcc2018|vcc2020; task, team, gender-pair and "
           "language describe VCC trials ('-' otherwise); language is the VCC target speaker's (the speech is "
           "English), kept as extra['target_language']. Source: asvspoof-challenge/2021 eval-package/README.md "
           "and config.py (ConfigDF.p_names)", "eval"),
    Layout("asvspoof5", ("SPEAKER_ID", "FLAC_FILE_NAME", "SPEAKER_GENDER", "CODEC", "CODEC_Q", "CODEC_SEED",
                         "ATTACK_TAG", "ATTACK_LABEL", "KEY", "TMP"),
           ("speaker", "utt_id", "gender", "codec", "codec_q", "codec_seed", "attack_tag", "attack", "label", ""),
           {2: "F|M", 8: _LABEL}, r"ASVspoof5\.", "ASVspoof5_protocols",
           {"train": ("flac_T", "ASVspoof5_train/flac_T"), "dev": ("flac_D", "ASVspoof5_dev/flac_D"),
            "eval": ("flac_E_eval", "ASVspoof5_eval/flac_E_eval", "flac_E")},
           "ASVspoof5.train.tsv = train, ASVspoof5.dev.track_1.tsv = dev, ASVspoof5.eval.track_1.tsv = eval; "
           "TMP is reserved ('-'). Source: README.txt of the ASVspoof 5 release (Zenodo 14498691)"),
)}


def _layout(name: str) -> Layout:
    if name in PROTOCOLS:
        return PROTOCOLS[name]
    close = difflib.get_close_matches(str(name), list(PROTOCOLS), n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    raise UsageError(f"unknown protocol layout {name!r}{hint}; choose one of {', '.join(PROTOCOLS)}")


def _base(filename: str) -> str:
    return re.split(r"[\\/]", str(filename))[-1]


def _matches(layout: Layout, fields: list[str]) -> bool:
    return len(fields) == len(layout.fields) and all(
        re.fullmatch(p, fields[i], flags=re.IGNORECASE) for i, p in layout.patterns.items())


def detect(first_lines: list[str], filename: str) -> str | None:
    """The layout of a protocol file from its first lines (complete lines, not a cut-off tail), or None.

    Up to 10 non-empty lines must all have a layout's field count and patterns (its label column holds
    bonafide/spoof, ...), so a CSV/TSV with a header row (`path,label`, `path<TAB>label ...`) is no
    protocol; `filename` decides only between layouts that fit equally well.
    """
    lines = [line.lstrip("\ufeff").split() for line in first_lines]
    rows = [fields for fields in lines if fields][:10]
    if not rows or any("," in f for fields in rows for f in fields):
        return None
    found = [n for n, layout in PROTOCOLS.items() if all(_matches(layout, fields) for fields in rows)]
    if len(found) > 1:
        found = [n for n in found if re.search(PROTOCOLS[n].files, _base(filename))]
    return found[0] if len(found) == 1 else None


def parse(text: str, layout: str, filename: str) -> list[dict]:
    """One dict per non-empty line of a protocol in `layout`.

    Keys: utt_id, speaker, attack ("-" for bona fide), label (bonafide|spoof), split (train|dev|eval or
    None: the release's one split, else from the file name, else from the T_/D_/E_ trial id), language
    ("en": every layout here is English speech) and extra (the layout's other columns under `keys`,
    values as published). A wrong field count, label, a trial id that is not a plain file name or a
    repeated one is a UsageError naming the file, the line (1-based, empty lines counted) and the layout.
    """
    spec, name = _layout(layout), _base(filename)
    m = _SPLIT_IN_NAME.search(name)
    from_name = _SPLIT_WORDS[m.group(1)] if m else None
    rows, seen = [], {}
    for n, line in enumerate(text.lstrip("\ufeff").splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        where = f"{name} line {n}"
        if len(fields) != len(spec.fields):
            raise UsageError(f"{where}: expected {len(spec.fields)} fields '{' '.join(spec.fields)}' "
                             f"({spec.name}), got {len(fields)}")
        extra = {k: v for k, v in zip(spec.keys, fields) if k}
        utt, speaker, attack, key = (extra.pop(k) for k in _CORE)
        label = _LABELS.get(key.lower())
        if label is None:
            raise UsageError(f"{where}: key {key!r} is not one of bonafide, spoof ({spec.name})")
        if utt in (".", "..") or any(c in utt for c in "/\\\0"):
            raise UsageError(f"{where}: trial id {utt!r} is not a file name ({spec.name})")
        if utt in seen:
            raise UsageError(f"{where}: duplicate utt_id {utt!r} (first on line {seen[utt]}, {spec.name})")
        seen[utt] = n
        in_id = _SPLIT_IN_ID.match(utt)
        split = spec.split or from_name or (dict(zip("TDE", SPLITS))[in_id.group(1)] if in_id else None)
        rows.append({"utt_id": utt, "speaker": speaker, "attack": "-" if label == "bonafide" else attack,
                     "label": label, "split": split, "language": "en", "extra": extra})
    return rows


def audio_candidates(protocol_path_parent: str, layout: str, split: str | None) -> list[str]:
    """Folders that may hold the protocol's UTT.flac files, relative to `protocol_path_parent`, most likely
    first: the official place seen from the protocol's official folder (e.g. `../../../ASVspoof2021_LA_eval/flac`
    from `keys/LA/CM`), then the same release folders 0-3 levels up, then `flac` and `.` beside it. Every
    split's folders when `split` is None; ASVspoof 2021 has only eval. The caller takes the first that holds
    the parsed rows' UTT.flac files (`.` always exists).
    """
    spec = _layout(layout)
    if split is not None and spec.split is None and split not in spec.audio:
        raise UsageError(f"split {split!r} is not one of {', '.join(spec.audio)} ({spec.name})")
    splits = [spec.split] if spec.split else [split] if split else list(spec.audio)
    parent = str(protocol_path_parent).replace("\\", "/").rstrip("/")
    depth = spec.home.count("/") + 1
    at_home = parent == spec.home or parent.endswith("/" + spec.home)
    ups = [depth, *(u for u in range(4) if u != depth)] if at_home else list(range(4))
    found = ["../" * up + folder for up in ups for s in splits for folder in spec.audio[s]]
    return list(dict.fromkeys(found + ["flac", "."]))

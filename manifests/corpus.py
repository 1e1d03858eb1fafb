"""Corpus import: a folder of audio, a CSV/TSV/Parquet table, or an ASVspoof protocol -> rows of originals.

Every form yields rows in the manifest schema (kind=original, source_id=utt_id) with absolute
paths; `import_corpus` is the one entry point.
"""
from __future__ import annotations

import collections
import csv
import logging
import os
import re
from pathlib import Path

import pyarrow.parquet as pq

from .audio import AUDIO_SUFFIXES, AudioError, describe
from .errors import UsageError, first_line
from .schema import SPLITS, empty_row

DEMO = Path(__file__).parent / "demo"
log = logging.getLogger("hardspoof.corpus")

_LABELS = {
    "bonafide": "bonafide", "bona-fide": "bonafide", "bona_fide": "bonafide", "genuine": "bonafide",
    "real": "bonafide", "human": "bonafide", "spoof": "spoof", "fake": "spoof", "deepfake": "spoof",
}
_SPLIT_ALIASES = {"trn": "train", "train": "train", "dev": "dev", "trl": "eval", "eval": "eval", "test": "eval"}


def _label(value: str, where: str) -> str:
    label = _LABELS.get(str(value).strip().lower())
    if label is None:
        raise UsageError(f"{where}: label {value!r} is not one of bonafide, spoof")
    return label


def _split(value: str | None, where: str) -> str | None:
    if value is None or str(value).strip() in ("", "-", "None", "nan"):
        return None
    split = _SPLIT_ALIASES.get(str(value).strip().lower())
    if split is None:
        raise UsageError(f"{where}: split {value!r} is not one of {', '.join(SPLITS)}")
    return split


def _inside(path: Path, root: Path, allow_outside_root: bool, where: str) -> Path:
    resolved = Path(os.path.normpath(path if path.is_absolute() else root / path))
    if not allow_outside_root and os.path.commonpath([resolved, root]) != str(root):
        raise UsageError(f"{where}: path {path} is outside the corpus root {root} (pass --allow-outside-root to permit)")
    return resolved


def _row(utt_id: str, path: Path, label: str, **extra) -> dict:
    row = empty_row()
    row.update(utt_id=utt_id, path=str(path), label=label, kind="original", source_id=utt_id,
               attack="-" if label == "bonafide" else "unknown", status="ok")
    row.update({k: v for k, v in extra.items() if v not in (None, "")})
    try:
        info = describe(path)
        row.update(info, duration_s=float(info["duration_s"]))
        if not info["num_samples"]:
            row.update(status="failed", error=f"{path.name} has no audio samples")
    except (AudioError, OSError) as e:
        row.update(status="failed", error=first_line(e))
    return row


def _check_unique(rows: list[dict], where: str) -> list[dict]:
    seen: set[str] = set()
    for r in rows:
        if r["utt_id"] in seen:
            raise UsageError(f"{where}: duplicate utt_id {r['utt_id']!r}")
        seen.add(r["utt_id"])
    return rows


def _unusable(path: Path) -> str | None:
    """Why a directory entry with an audio suffix cannot be a clip, or None."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        return "file(s) whose name is not valid UTF-8 (rename them)"
    if path.is_dir():
        return "folder(s) named like audio files"
    if not path.is_file():
        return "broken or looping symlink(s)"
    return None


def import_folder(root: Path) -> list[dict]:
    """Every audio file under `root`, recursively, as bona fide; utt_id = relative path without suffix."""
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and not p.name.startswith("."))
    rows, skipped = [], collections.Counter()
    for f in files:
        reason = _unusable(f)
        if reason:
            skipped[reason] += 1
            continue
        rel = f.relative_to(root)
        rows.append(_row(str(rel.with_suffix("")), f, "bonafide"))
    for reason, n in sorted(skipped.items()):
        log.warning("skipped %d %s under %s", n, reason, root)
    if not rows:
        raise UsageError(f"no audio files ({', '.join(AUDIO_SUFFIXES)}) under {root}")
    return _check_unique(rows, str(root))


def _read_table(path: Path) -> list[dict]:
    if path.suffix.lower() == ".parquet":
        return pq.read_table(path).to_pylist()
    with open(path, newline="", encoding="utf-8") as fh:
        sample = fh.read(4096)
        fh.seek(0)
        delimiter = "\t" if path.suffix.lower() == ".tsv" or ("\t" in sample and "," not in sample) else ","
        return list(csv.DictReader(fh, delimiter=delimiter))


def import_table(path: Path, allow_outside_root: bool = False) -> list[dict]:
    """A CSV/TSV/Parquet with at least `path,label`; optional utt_id, attack, speaker, language, split."""
    try:
        records = _read_table(path)
    except (OSError, UnicodeDecodeError, csv.Error, Exception) as e:  # noqa: BLE001 - any parse error is user input
        raise UsageError(f"cannot read corpus table {path}: {first_line(e)}")
    if not records:
        raise UsageError(f"corpus table {path} has no rows")
    missing = [c for c in ("path", "label") if c not in records[0]]
    if missing:
        raise UsageError(f"corpus table {path} lacks column(s) {', '.join(missing)} (needs at least path,label)")
    root = path.parent.resolve()
    rows = []
    for i, rec in enumerate(records, start=2):
        where = f"{path.name} line {i}"
        audio = _inside(Path(str(rec["path"])), root, allow_outside_root, where)
        label = _label(rec["label"], where)
        utt = str(rec.get("utt_id") or Path(str(rec["path"])).with_suffix("").as_posix())
        attack = rec.get("attack") or None
        rows.append(_row(utt, audio, label, attack=attack if label == "spoof" else "-",
                         speaker=rec.get("speaker"), language=rec.get("language"),
                         split=_split(rec.get("split"), where)))
    return _check_unique(rows, path.name)


def _find_asvspoof_audio(protocol: Path, split: str | None) -> Path:
    names = {"train": "train", "dev": "dev", "eval": "eval"}
    candidates = [protocol.parent / "flac", protocol.parent]
    for parent in (protocol.parent, protocol.parent.parent):
        for d in sorted(parent.glob(f"*_{names.get(split or '', '*')}")):
            candidates.insert(0, d / "flac")
    for c in candidates:
        if c.is_dir() and any(c.glob("*.flac")):
            return c
    raise UsageError(f"cannot find the audio folder of {protocol.name}; pass it with --audio-dir")


def import_asvspoof(protocol: Path, audio_dir: Path | None = None) -> list[dict]:
    """ASVspoof 2019 LA protocol lines `SPEAKER UTT - ATTACK LABEL`; audio at audio_dir/UTT.flac."""
    m = re.search(r"\.(trn|trl|dev|eval|train)\b", protocol.name)
    split = _SPLIT_ALIASES.get(m.group(1)) if m else None
    audio_dir = audio_dir or _find_asvspoof_audio(protocol, split)
    rows = []
    with open(protocol, encoding="utf-8", errors="replace") as fh:
        for n, line in enumerate(fh, start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 5:
                raise UsageError(f"{protocol.name} line {n}: expected 5 fields 'SPEAKER UTT - ATTACK LABEL', got {len(fields)}")
            speaker, utt, _, attack, label = fields
            label = _label(label, f"{protocol.name} line {n}")
            audio = next((audio_dir / f"{utt}{s}" for s in (".flac", ".wav") if (audio_dir / f"{utt}{s}").exists()),
                         audio_dir / f"{utt}.flac")
            rows.append(_row(utt, audio, label, attack="-" if label == "bonafide" else attack,
                             speaker=speaker, language="en", split=split))
    if not rows:
        raise UsageError(f"protocol {protocol} has no lines")
    return _check_unique(rows, protocol.name)


def _is_protocol(path: Path) -> bool:
    with open(path, encoding="utf-8", errors="replace") as fh:
        first = fh.readline().split()
    return len(first) >= 4 and "," not in " ".join(first) and "path" not in first


def import_corpus(corpus: str | os.PathLike, audio_dir: str | os.PathLike | None = None,
                  allow_outside_root: bool = False) -> list[dict]:
    """Rows of originals for a corpus: 'demo', a folder, a CSV/TSV/Parquet table or an ASVspoof protocol.

    A folder holding `protocol.csv` is read through that table (labels, splits, speakers).
    """
    if str(corpus) == "demo":
        return import_table(DEMO / "protocol.csv")
    path = Path(corpus).expanduser()
    if not path.exists():
        raise UsageError(f"corpus not found: {path} (give 'demo', a folder of audio, a CSV/TSV/Parquet or a protocol file)")
    path = path.resolve()
    if path.is_dir():
        table = path / "protocol.csv"
        return import_table(table, allow_outside_root) if table.is_file() else import_folder(path)
    if path.suffix.lower() in (".csv", ".tsv", ".parquet"):
        return import_table(path, allow_outside_root)
    if _is_protocol(path):
        return import_asvspoof(path, Path(audio_dir).resolve() if audio_dir else None)
    raise UsageError(f"cannot tell what corpus {path.name} is: use a folder, .csv/.tsv/.parquet, or an ASVspoof protocol .txt")

"""Corpus import: a folder of audio, a CSV/TSV/Parquet table, or an ASVspoof protocol -> rows of originals.

Every form yields rows in the manifest schema (kind=original, source_id=utt_id) with absolute
paths (or URIs: a corpus may live in an object store, see `storage`); `import_corpus` is the
one entry point.
"""
from __future__ import annotations

import collections
import csv
import fnmatch
import io
import logging
import os
import posixpath
import re
import stat
from pathlib import Path

import pyarrow.parquet as pq

from . import storage
from .audio import AUDIO_SUFFIXES, AudioError, describe, header_problem
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


def _inside(path: str, root: str, allow_outside_root: bool, where: str) -> str:
    """`path` of a table row, joined to the table's folder; refused when what it really opens (symlinks,
    symlinked folders resolved) lies outside that folder's real location."""
    resolved = storage.join(root, path)
    if not allow_outside_root and not storage.is_within(storage.real(resolved), storage.real(root)):
        raise UsageError(f"{where}: path {path} is outside the corpus root {root} (pass --allow-outside-root to permit)")
    return resolved


def _row(utt_id: str, path: str, label: str, max_seconds: float | None = None, **extra) -> dict:
    """A row of an original: header facts and sha256 of `path`, or status=failed and why. Only regular
    files are opened; a header with an implausible rate or past `max_seconds` is not decoded."""
    row = empty_row()
    row.update(utt_id=utt_id, path=str(path), label=label, kind="original", source_id=utt_id,
               attack="-" if label == "bonafide" else "unknown", status="ok")
    row.update({k: v for k, v in extra.items() if v not in (None, "")})
    try:
        info = describe(path)
        row.update(info, duration_s=float(info["duration_s"]))
        problem = header_problem(storage.name(path), info["sample_rate"], info["num_samples"], max_seconds)
        if not info["num_samples"]:
            row.update(status="failed", error=f"{storage.name(path)} has no audio samples")
        elif problem:
            row.update(status="failed", error=problem)
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


def _is_special(path: str) -> bool:
    """True for a local entry that exists (after symlinks) and is neither a regular file nor a folder."""
    if storage.is_uri(path):
        return False
    try:
        mode = os.stat(path).st_mode
    except OSError:  # missing target or a symlink loop
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def _unusable(path: str, kind: str) -> str | None:
    """Why a folder entry with an audio suffix cannot be a clip, or None."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return "file(s) whose name is not valid UTF-8 (rename them)"
    if kind == storage.DIR:
        return "folder(s) named like audio files"
    if kind != storage.FILE:
        if _is_special(path):  # a FIFO, socket or device: never opened (a FIFO would block forever)
            return "named pipe(s), socket(s) or device file(s), not regular files"
        return "broken or looping symlink(s)"
    return None


def _under(path: str, folders: tuple[str, ...]) -> bool:
    return any(storage.is_within(storage.real(path), f) for f in folders)


def audio_in_folder(root: str | os.PathLike, exclude: tuple[str | os.PathLike, ...] = ()) -> list[str]:
    """Every usable audio file under `root`, recursively, sorted, except what is under an `exclude`d
    folder. Entries that cannot be a clip (names that are not UTF-8, folders named like audio, broken
    links, named pipes) are skipped and counted in one warning per reason; no audio at all is a UsageError."""
    root = storage.normalize(root)
    excluded = tuple(storage.real(storage.normalize(e)) for e in exclude)
    found = sorted((p, k) for p, k in storage.entries(root, recursive=True)
                   if storage.suffix(p) in AUDIO_SUFFIXES and not storage.name(p).startswith("."))
    files, skipped = [], collections.Counter()
    for f, kind in found:
        reason = _unusable(f, kind)
        if reason:
            skipped[reason] += 1
        elif excluded and _under(f, excluded):
            skipped["file(s) in the output folder, which is inside the corpus (not read as originals)"] += 1
        else:
            files.append(f)
    for reason, n in sorted(skipped.items()):
        log.warning("skipped %d %s under %s", n, reason, root)
    if not files:
        raise UsageError(f"no audio files ({', '.join(AUDIO_SUFFIXES)}) under {root}")
    return files


def import_folder(root: str, exclude: tuple[str, ...] = (), max_seconds: float | None = None) -> list[dict]:
    """Every audio file under `root` (not under an `exclude`d folder), recursively, as bona fide;
    utt_id = relative path without suffix."""
    rows = [_row(posixpath.splitext(storage.relative(f, root))[0], f, "bonafide", max_seconds)
            for f in audio_in_folder(root, exclude)]
    return _check_unique(rows, str(root))


def _read_table(path: str) -> list[dict]:
    if storage.suffix(path) == ".parquet":
        return pq.read_table(storage.readable(path)).to_pylist()
    text = storage.read_bytes(path).decode("utf-8")
    sample = text[:4096]
    delimiter = "\t" if storage.suffix(path) == ".tsv" or ("\t" in sample and "," not in sample) else ","
    return list(csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter))


def import_table(path: str, allow_outside_root: bool = False, max_seconds: float | None = None) -> list[dict]:
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
    root, table_name = storage.parent(path), storage.name(path)
    rows = []
    for i, rec in enumerate(records, start=2):
        where = f"{table_name} line {i}"
        audio = _inside(str(rec["path"]), root, allow_outside_root, where)
        label = _label(rec["label"], where)
        utt = str(rec.get("utt_id") or Path(str(rec["path"])).with_suffix("").as_posix())
        attack = rec.get("attack") or None
        rows.append(_row(utt, audio, label, max_seconds, attack=attack if label == "spoof" else "-",
                         speaker=rec.get("speaker"), language=rec.get("language"),
                         split=_split(rec.get("split"), where)))
    return _check_unique(rows, table_name)


def _files_in(folder: str) -> set[str]:
    """Names of the files directly in `folder` (empty when it is not a folder)."""
    if storage.kind(folder) != storage.DIR:
        return set()
    return {storage.name(p) for p, k in storage.entries(folder) if k == storage.FILE}


def _find_asvspoof_audio(protocol: str, split: str | None) -> str:
    here = storage.parent(protocol)
    candidates = [storage.join(here, "flac"), here]
    for parent in (here, storage.parent(here)):
        dirs = sorted(p for p, k in storage.entries(parent) if k == storage.DIR
                      and fnmatch.fnmatch(storage.name(p), f"*_{split or '*'}"))
        candidates[:0] = [storage.join(d, "flac") for d in dirs]
    for c in candidates:
        if any(n.endswith(".flac") for n in _files_in(c)):
            return c
    raise UsageError(f"cannot find the audio folder of {storage.name(protocol)}; pass it with --audio-dir")


def import_asvspoof(protocol: str, audio_dir: str | None = None, max_seconds: float | None = None) -> list[dict]:
    """ASVspoof 2019 LA protocol lines `SPEAKER UTT - ATTACK LABEL`; audio at audio_dir/UTT.flac."""
    pname = storage.name(protocol)
    m = re.search(r"\.(trn|trl|dev|eval|train)\b", pname)
    split = _SPLIT_ALIASES.get(m.group(1)) if m else None
    audio_dir = audio_dir or _find_asvspoof_audio(protocol, split)
    present = _files_in(audio_dir)
    rows = []
    for n, line in enumerate(storage.read_bytes(protocol).decode("utf-8", errors="replace").splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 5:
            raise UsageError(f"{pname} line {n}: expected 5 fields 'SPEAKER UTT - ATTACK LABEL', got {len(fields)}")
        speaker, utt, _, attack, label = fields
        label = _label(label, f"{pname} line {n}")
        audio = next((f"{utt}{s}" for s in (".flac", ".wav") if f"{utt}{s}" in present), f"{utt}.flac")
        rows.append(_row(utt, storage.join(audio_dir, audio), label, max_seconds,
                         attack="-" if label == "bonafide" else attack,
                         speaker=speaker, language="en", split=split))
    if not rows:
        raise UsageError(f"protocol {protocol} has no lines")
    return _check_unique(rows, pname)


def _is_protocol(path: str) -> bool:
    first = storage.read_bytes(path)[:4096].decode("utf-8", errors="replace").split("\n", 1)[0].split()
    return len(first) >= 4 and "," not in " ".join(first) and "path" not in first


def import_corpus(corpus: str | os.PathLike, audio_dir: str | os.PathLike | None = None,
                  allow_outside_root: bool = False, exclude: tuple[str | os.PathLike, ...] = (),
                  max_seconds: float | None = None) -> list[dict]:
    """Rows of originals for a corpus: 'demo', a folder, a CSV/TSV/Parquet table or an ASVspoof protocol.

    A folder holding `protocol.csv` is read through that table (labels, splits, speakers); a folder
    read file by file leaves out what is under an `exclude`d folder (a run's own output). A clip whose
    header declares more than `max_seconds` seconds is a failed row.
    """
    if str(corpus) == "demo":
        return import_table(str(DEMO / "protocol.csv"), max_seconds=max_seconds)
    path = storage.normalize(corpus)
    found = storage.kind(path)
    if found is None:
        raise UsageError(f"corpus not found: {path} (give 'demo', a folder of audio, a CSV/TSV/Parquet or a protocol file)")
    if found == storage.DIR:
        table = storage.join(path, "protocol.csv")
        if storage.kind(table) == storage.FILE:
            return import_table(table, allow_outside_root, max_seconds)
        return import_folder(path, tuple(map(str, exclude)), max_seconds)
    if storage.suffix(path) in (".csv", ".tsv", ".parquet"):
        return import_table(path, allow_outside_root, max_seconds)
    if _is_protocol(path):
        return import_asvspoof(path, storage.normalize(audio_dir) if audio_dir else None, max_seconds)
    raise UsageError(f"cannot tell what corpus {storage.name(path)} is: use a folder, .csv/.tsv/.parquet, or an ASVspoof protocol .txt")

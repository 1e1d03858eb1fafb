"""Corpora in other tools' formats: a Hugging Face `datasets` folder with embedded audio, a lhotse CutSet.

Both readers return rows in the manifest schema, as the corpus importers do (absolute paths, header facts
and sha256 of the file, status ok or failed and why). Columns the source carries in the manifest's own
names (an export of `manifests export`: kind, source_id, method, model, attack, split, ...) are kept, so
export -> import gives the manifest back; what a generic source lacks gets the importers' defaults (kind
original, source_id = utt_id; no label anywhere = every clip bona fide, as for a folder of audio).

Where the audio becomes files. A datasets folder embeds its audio, and a cut may be a segment of a
recording, a transformed recording or a mix: those are written once, as files, under `audio_dir` (the
`--audio-dir` option), by default a folder beside the source named `<source>-audio` (never inside it: the
dataset folder stays exactly what `push_to_hub`/`upload` would publish; never the current directory).
A file is named after its utt_id and rewritten only when its bytes differ, so importing twice writes once.
Embedded bytes are written as they are (byte-exact); a cut that must be cut or mixed is decoded by lhotse
and written as 24-bit FLAC. A cut whose recording is one whole file is used where it lies (not copied); a
lhotse source that is a shell command is never run (its row fails).
"""
from __future__ import annotations

import gzip
import json
import os
import posixpath
import re
from typing import Iterator

import pyarrow.parquet as pq

from . import storage
from .audio import AudioError, describe, header_problem
from .clipfiles import clip_path, default_audio_dir, suffix_of, write_once
from .errors import UsageError, first_line
from .schema import LABEL_SPELLINGS, SPLIT_SPELLINGS, SPLITS, empty_row

LABELS, SPLIT_NAMES = LABEL_SPELLINGS, SPLIT_SPELLINGS  # the importers' one map (schema.py)
_SPLIT_IN_NAME = re.compile(r"(?:^|[-._/ 0-9])(" + "|".join(sorted(SPLIT_NAMES, key=len, reverse=True))
                            + r")(?=[-._/ 0-9]|$)", re.I)


def split_of_name(name: str) -> str | None:
    """The split a file name says, by datasets' keywords (train, validation/dev, test/eval, ...), or None."""
    m = _SPLIT_IN_NAME.search(name)
    return SPLIT_NAMES[m.group(1).lower()] if m else None


def label_of(value, where: str) -> str | None:
    if value is None or str(value).strip() == "":
        return None
    label = LABELS.get(str(value).strip().lower())
    if label is None:
        raise UsageError(f"{where}: label {value!r} is not one of bonafide, spoof (or real/fake, genuine/spoof)")
    return label


def clip_row(utt_id: str, path: str, fields: dict, max_seconds: float | None = None) -> dict:
    """A manifest row for the clip file at `path`: the source's `fields` in manifest column names, the
    importers' defaults, and the file's header facts and sha256 (or status failed and why)."""
    row = empty_row()
    row.update({k: v for k, v in fields.items() if k in row and v not in (None, "")})
    label = row.get("label") or "bonafide"
    row.update(utt_id=utt_id, path=path, label=label, kind=row.get("kind") or "original",
               source_id=row.get("source_id") or utt_id, status="ok", error=None,
               attack="-" if label == "bonafide" else (row.get("attack") or "unknown"))
    if row.get("split") is not None:
        row["split"] = SPLIT_NAMES.get(str(row["split"]).lower(), row["split"])
    expected = fields.get("sha256")
    try:
        info = describe(path)
        row.update(info, duration_s=float(info["duration_s"]))
        problem = header_problem(storage.name(path), info["sample_rate"], info["num_samples"], max_seconds)
        if not info["num_samples"]:
            row.update(status="failed", error=f"{storage.name(path)} has no audio samples")
        elif problem:
            row.update(status="failed", error=problem)
        elif expected and expected != info["sha256"]:
            row.update(status="failed", error=f"{storage.name(path)}: audio bytes do not match the source's sha256")
    except (AudioError, OSError) as e:
        row.update(status="failed", error=first_line(e))
    if "file_size" in row and not storage.is_uri(path) and os.path.isfile(path):  # schema 1.1 identity columns
        st = os.stat(path)
        row.update(file_size=st.st_size, file_mtime_ns=st.st_mtime_ns)
    if row["split"] not in (None, *SPLITS):
        row["split"] = None
    return row


def check_unique(rows: list[dict], where: str) -> list[dict]:
    seen: set[str] = set()
    for r in rows:
        if r["utt_id"] in seen:
            raise UsageError(f"{where}: duplicate utt_id {r['utt_id']!r}")
        seen.add(r["utt_id"])
    return rows


# --- Hugging Face datasets folder -----------------------------------------------------------------------

def _hf_features(schema) -> dict:
    meta = (schema.metadata or {}).get(b"huggingface")
    try:
        return (json.loads(meta).get("info") or {}).get("features") or {} if meta else {}
    except (ValueError, AttributeError):
        return {}


def _audio_column(schema) -> str | None:
    """The column datasets decodes as Audio: named so in the `huggingface` metadata, else an `audio`
    column of {bytes, path}."""
    for name, feat in _hf_features(schema).items():
        if isinstance(feat, dict) and feat.get("_type") == "Audio" and name in schema.names:
            return name
    if "audio" in schema.names:
        t = schema.field("audio").type
        if hasattr(t, "names") and {"bytes", "path"} <= set(t.names):
            return "audio"
    return None


def hf_parquet_files(folder: str) -> list[str]:
    """The Parquet files of a datasets folder: under data/ when it has one (the push_to_hub layout), else
    anywhere below it; hidden files and folders skipped, sorted."""
    folder = storage.normalize(folder)
    if not storage.is_uri(folder):
        return sorted(_local_parquet(folder))
    data = storage.join(folder, "data")
    base = data if storage.kind(data) == storage.DIR else folder
    rel = lambda f: storage.relative(f, folder)  # noqa: E731
    return sorted(f for f, k in storage.entries(base, recursive=True) if k == storage.FILE
                  and storage.suffix(f) == ".parquet" and not any(p.startswith(".") for p in rel(f).split("/")))


def _local_parquet(folder: str) -> Iterator[str]:
    """`hf_parquet_files` of a local folder, lazily: the walk reads names only (a stat for .parquet ones), so
    stopping at the first one holds no list of a million clips."""
    data = os.path.join(folder, "data")
    for here, dirs, files in os.walk(data if os.path.isdir(data) else folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for f in sorted(f for f in files if f.lower().endswith(".parquet") and not f.startswith(".")):
            path = os.path.join(here, f)
            if os.path.isfile(path):
                yield path


def _first_parquet(folder: str) -> str | None:
    """A Parquet file of a datasets folder (where `hf_parquet_files` looks), found without listing the whole
    tree of a local folder."""
    if storage.is_uri(folder):
        files = hf_parquet_files(folder)
        return files[0] if files else None
    return next(_local_parquet(folder), None)


def is_hf_folder(path: str | os.PathLike) -> bool:
    """True for a folder of Parquet files (data/*.parquet, as datasets writes) whose first has an Audio column."""
    loc = storage.normalize(path)
    if storage.kind(loc) != storage.DIR:
        return False
    first = _first_parquet(loc)
    try:
        return first is not None and _audio_column(pq.read_schema(storage.readable(first))) is not None
    except (OSError, ValueError):
        return False


def _hf_records(folder: str) -> Iterator[tuple[str, str | None, dict, dict]]:
    """(file, split named by the file, audio {bytes, path}, other columns) per row, a few rows at a time."""
    for f in hf_parquet_files(folder):
        pf = pq.ParquetFile(storage.readable(f))
        schema = pf.schema_arrow
        audio = _audio_column(schema)
        if audio is None:
            raise UsageError(f"{storage.name(f)} has no audio column ({{bytes, path}}, or Audio in its metadata)")
        labels = _hf_features(schema).get("label", {})
        names = labels.get("names") if isinstance(labels, dict) and labels.get("_type") == "ClassLabel" else None
        split = split_of_name(storage.relative(f, folder))
        for batch in pf.iter_batches(batch_size=16):
            for rec in batch.to_pylist():
                if names is not None and isinstance(rec.get("label"), int):
                    rec["label"] = names[rec["label"]] if 0 <= rec["label"] < len(names) else None
                yield f, split, rec.pop(audio) or {}, rec


def read_hf_folder(path: str | os.PathLike, audio_dir: str | os.PathLike | None = None,
                   max_seconds: float | None = None, originals_only: bool = False) -> list[dict]:
    """Rows of a datasets folder (see the module docstring); its embedded audio is written under `audio_dir`
    (default `<folder>-audio` beside it). utt_id: the `utt_id` (or `id`) column, else the audio's file name
    without suffix, else `<split>/<row number>`. With `originals_only`, rows of kind reconstruction are left out."""
    folder = storage.normalize(path)
    if not is_hf_folder(folder):
        raise UsageError(f"{path} is not a datasets folder (Parquet files under data/ with an audio column)")
    audio_dir = storage.normalize(audio_dir) if audio_dir else default_audio_dir(folder)
    rows, n = [], 0
    for f, file_split, audio, rec in _hf_records(folder):
        n += 1
        where = f"{storage.name(f)} row {n}"
        if originals_only and rec.get("kind") == "reconstruction":
            continue
        stem = posixpath.splitext(audio.get("path") or "")[0]
        utt = str(rec.get("utt_id") or rec.get("id") or stem or f"{file_split or 'row'}/{n:08d}")
        fields = {**rec, "label": label_of(rec.get("label"), where),
                  "speaker": rec.get("speaker") or rec.get("speaker_id") or rec.get("client_id"),
                  "split": rec["split"] if "split" in rec else file_split}  # a split column is kept as it is
        data = audio.get("bytes")
        if data is None:  # a path-only Audio value: a local absolute file is used where it lies
            src = audio.get("path")
            if not (src and (os.path.isabs(src) or storage.is_uri(src))):
                rows.append(dict(clip_row(utt, src or "", fields, max_seconds), status="failed",
                                 error=f"{where}: no embedded audio bytes and no absolute path"))
                continue
            rows.append(clip_row(utt, src, fields, max_seconds))
            continue
        dest = clip_path(audio_dir, utt, suffix_of(audio.get("path"), data))
        write_once(dest, data)
        rows.append(clip_row(utt, dest, fields, max_seconds))
    if not rows:
        raise UsageError(f"datasets folder {path} has no rows")
    return check_unique(rows, storage.name(folder))


# --- lhotse CutSet --------------------------------------------------------------------------------------

_CUT_TYPES = ("MonoCut", "MultiCut", "MixedCut", "PaddingCut", "DataCut")


def _first_record(path: str) -> dict | None:
    try:
        raw = storage.read_bytes(path)[:1 << 20] if not path.endswith(".gz") else gzip.open(path).readline()
        line = raw.split(b"\n", 1)[0]
        rec = json.loads(line)
    except (OSError, ValueError, EOFError):
        return None
    return rec if isinstance(rec, dict) else None


def cut_files(path: str | os.PathLike) -> list[str]:
    """The CutSet files at `path`: the file itself, or a folder's `*cuts*.jsonl[.gz]` files, sorted."""
    loc = storage.normalize(path)
    if storage.kind(loc) == storage.FILE:
        return [loc]
    if storage.kind(loc) != storage.DIR:
        return []
    return sorted(f for f, k in storage.entries(loc) if k == storage.FILE and "cuts" in storage.name(f)
                  and re.search(r"\.jsonl(\.gz)?$", storage.name(f)))


def is_cutset(path: str | os.PathLike) -> bool:
    """True for a lhotse CutSet file (.jsonl / .jsonl.gz of cuts) or a folder holding `*cuts*.jsonl.gz` files."""
    files = [f for f in cut_files(path) if re.search(r"\.jsonl(\.gz)?$", storage.name(f)) and not storage.is_uri(f)]
    rec = _first_record(files[0]) if files else None
    return bool(rec) and (rec.get("type") in _CUT_TYPES or {"recording", "supervisions"} <= set(rec))


def read_cutset(path: str | os.PathLike, audio_dir: str | os.PathLike | None = None,
                max_seconds: float | None = None, originals_only: bool = False) -> list[dict]:
    """Rows of a lhotse CutSet (a cuts file, or a folder of them; see the module docstring). utt_id = cut id;
    label, attack, method, model, source_id, kind, split, ... from the supervision's (else the cut's) custom
    fields; speaker and language from the supervision; split, when no field says it, from the file name
    (`<corpus>_cuts_<part>.jsonl.gz`). Cuts with no label anywhere are bona fide; a CutSet with labels on
    some cuts only is refused."""
    from .interop_lhotse import cut_audio, require_lhotse

    CutSet = require_lhotse().CutSet

    files = cut_files(path)
    if not files or not is_cutset(path):
        raise UsageError(f"{path} is not a lhotse CutSet (a cuts .jsonl.gz file, or a folder of *cuts*.jsonl.gz)")
    audio_dir = storage.normalize(audio_dir) if audio_dir else default_audio_dir(storage.normalize(path))
    rows, labelled = [], []
    for f in files:
        file_split = split_of_name(re.sub(r".*cuts", "", storage.name(f)))
        for cut in CutSet.from_jsonl_lazy(f):
            sup = cut.supervisions[0] if getattr(cut, "supervisions", None) else None
            fields = {**(getattr(cut, "custom", None) or {}), **((sup.custom or {}) if sup else {})}
            if originals_only and fields.get("kind") == "reconstruction":
                continue
            fields.update(label=label_of(fields.get("label"), f"cut {cut.id}"),
                          split=fields["split"] if "split" in fields else file_split,
                          speaker=sup.speaker if sup else None, language=sup.language if sup else None)
            where, problem = cut_audio(cut, lambda suffix, c=cut: clip_path(audio_dir, c.id, suffix), storage.parent(f))
            row = clip_row(cut.id, where or "", fields, max_seconds)
            rows.append(row if problem is None else dict(row, status="failed", error=problem))
            labelled.append(fields["label"] is not None)
    if any(labelled) and not all(labelled):
        raise UsageError(f"{path}: cut {rows[labelled.index(False)]['utt_id']} has no label while others do "
                         "(give every cut a `label` custom field, or none: then all are bona fide)")
    if not rows:
        raise UsageError(f"CutSet {path} has no cuts")
    return check_unique(rows, storage.name(path))

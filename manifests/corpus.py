"""Corpus import: a folder of audio, a CSV/TSV/Parquet table, an ASVspoof protocol (2019 LA, 2021 LA/DF,
ASVspoof 5; see `protocols`), a Hugging Face datasets folder or a lhotse CutSet (see `interop`).

`list_corpus` says what a corpus holds as an Arrow table (see `listing`), opening no audio (a datasets
folder or CutSet is the exception: its embedded or cut audio is written out as files once): that is
what `reconstruct run` plans from. `import_corpus` adds each file's header facts and sha256 and
returns rows in the manifest schema (kind=original, source_id=utt_id), for `manifests import`.
Paths are absolute (or URIs: a corpus may live in an object store, see `storage`).
"""
from __future__ import annotations

import collections
import csv
import logging
import os
import posixpath
from pathlib import Path
from typing import Iterator

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from . import listing, protocols, storage
from .audio import AUDIO_SUFFIXES, AudioError, describe, header_problem
from .errors import UsageError, first_line
from .schema import LABEL_SPELLINGS, SPLIT_SPELLINGS, SPLITS, empty_row

DEMO = Path(__file__).parent / "demo"
DESCRIBE_CHUNK = 4096
log = logging.getLogger("hardspoof.corpus")

_LABELS = LABEL_SPELLINGS
_SPLIT_ALIASES = SPLIT_SPELLINGS


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


def describe_row(entry: dict, max_seconds: float | None = None) -> dict:
    """A manifest row of an original from a listing entry (see `listing`): header facts and sha256 of
    its file, or status=failed and why. Only regular files are opened; a header with an implausible rate
    or past `max_seconds` is not decoded."""
    row = empty_row()
    row.update({k: v for k, v in entry.items() if k in row and v not in (None, "")})
    row.update(kind="original", source_id=entry["utt_id"], status="ok")
    if entry.get("problem"):
        return dict(row, status="failed", error=entry["problem"])
    try:
        info = describe(entry["path"])
        row.update(info, duration_s=float(info["duration_s"]))
        problem = header_problem(storage.name(entry["path"]), info["sample_rate"], info["num_samples"], max_seconds)
        if not info["num_samples"]:
            row.update(status="failed", error=f"{storage.name(entry['path'])} has no audio samples")
        elif problem:
            row.update(status="failed", error=problem)
    except (AudioError, OSError) as e:
        row.update(status="failed", error=first_line(e))
    return row


def _entry(utt_id: str, path: str, label: str, **extra) -> dict:
    """A listing entry of an original (nothing opened yet)."""
    return {"utt_id": utt_id, "path": path, "label": label, "attack": "-" if label == "bonafide" else "unknown",
            **{k: v for k, v in extra.items() if v not in (None, "")}}


def _check_unique(table: pa.Table, where: str) -> pa.Table:
    dup = listing.duplicates(table["utt_id"])
    if dup is not None:
        raise UsageError(f"{where}: duplicate utt_id {dup!r}")
    return table


def _unusable_name(name: str) -> str | None:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "file(s) whose name is not valid UTF-8 (rename them)"
    return None


_OUTSIDE = "symlink(s) leading outside the corpus folder, not followed (pass --allow-outside-root to follow)"
_OUTPUT = "hardspoof output folder(s) (holding manifest/) inside the corpus: their files are not read as originals"


def holds_manifest(folder: str) -> bool:
    """Whether a local folder is a hardspoof output: it holds `manifest/` with the marker `reconstruct run` writes
    there when it starts (see `io.MARKER`), or whose first Parquet part carries the schema version key (outputs
    made before the marker). One stat for a folder that holds no `manifest/`: the corpus walk asks every folder."""
    from .io import MARKER
    from .schema import VERSION_KEY

    manifest = os.path.join(folder, "manifest")
    if not os.path.isdir(manifest):
        return False
    if os.path.exists(os.path.join(manifest, MARKER)):
        return True
    try:
        with os.scandir(manifest) as it:
            part = next((e.path for e in it if e.name.endswith(".parquet") and not e.name.startswith(".")), None)
        meta = pq.read_schema(part).metadata if part else None
    except (OSError, pa.ArrowException):
        return False
    return bool(meta) and VERSION_KEY in meta


def _walk_local(root: str, excluded: tuple[str, ...], skipped: collections.Counter, names: dict,
                allow_outside_root: bool = False) -> Iterator[dict]:
    """Listing entries (path, size, mtime) of the audio files under a local folder, in sorted order,
    without following symlinked folders, symlinks that lead out of the root (unless allowed), or going into
    another run's output folder; what cannot be a clip is counted in `skipped` and its first three paths kept
    in `names` (reason -> list)."""
    real_root = storage.real(root)

    def skip(reason: str, path: str) -> None:
        skipped[reason] += 1
        first = names.setdefault(reason, [])
        if len(first) < 3:  # what the warning names; a million skips keep three
            first.append(os.path.relpath(path, root))

    for here, dirs, files in os.walk(root):
        dirs.sort()
        keep = []
        for d in dirs:
            path = os.path.join(here, d)
            if excluded and _under(path, excluded):
                skip("output folder(s) inside the corpus (their files are not read as originals)", path)
            elif os.path.islink(path):
                skip("symlinked folder(s), not followed", path)
            elif holds_manifest(path):
                skip(_OUTPUT, path)
            else:
                keep.append(d)
                if d.lower().endswith(AUDIO_SUFFIXES) and not d.startswith("."):
                    skip("folder(s) named like audio files", path)
        dirs[:] = keep
        for f in sorted(files):
            if not f.lower().endswith(AUDIO_SUFFIXES) or f.startswith("."):
                continue
            path = os.path.join(here, f)
            reason = _unusable_name(path)
            if reason is None:
                size, mtime, problem = listing.identity(path)
                if problem is None:
                    if not allow_outside_root and os.path.islink(path) and \
                            not storage.is_within(os.path.realpath(path), real_root):
                        skip(_OUTSIDE, path)
                        continue
                    yield {"path": path, "file_size": size, "file_mtime_ns": mtime}
                    continue
                reason = ("named pipe(s), socket(s) or device file(s), not regular files"
                          if "not a regular file" in problem else "broken or looping symlink(s)")
            skip(reason, path)


def _walk_remote(root: str, skipped: collections.Counter) -> Iterator[dict]:
    from pyarrow import fs as pafs

    fs, key = storage.filesystem(root)
    scheme = root.split("://", 1)[0]
    infos = fs.get_file_info(pafs.FileSelector(key, allow_not_found=True, recursive=True))
    for i in sorted(infos, key=lambda i: i.path):
        if not i.base_name.lower().endswith(AUDIO_SUFFIXES) or i.base_name.startswith("."):
            continue
        if i.type == pafs.FileType.File:
            yield {"path": f"{scheme}://{i.path}", "file_size": i.size, "file_mtime_ns": i.mtime_ns or 0}
        else:
            skipped["folder(s) named like audio files"] += 1


def _folder_entries(root: str, exclude: tuple[str | os.PathLike, ...] = (),
                    allow_outside_root: bool = False) -> Iterator[dict]:
    root = storage.normalize(root)
    excluded = tuple(storage.real(storage.normalize(e)) for e in exclude)
    skipped: collections.Counter = collections.Counter()
    names: dict[str, list[str]] = {}
    walk = _walk_remote(root, skipped) if storage.is_uri(root) else \
        _walk_local(root, excluded, skipped, names, allow_outside_root)
    found = 0
    for e in walk:
        found += 1
        yield e
    for reason, n in sorted(skipped.items()):
        first = [x.encode("utf-8", "backslashreplace").decode() for x in names.get(reason, [])[:3]]
        more = f" (and {n - len(first)} more)" if n > len(first) else ""
        log.warning("skipped %d %s under %s%s", n, reason, root, f": {', '.join(first)}{more}" if first else "")
    if not found:
        raise UsageError(f"no audio files ({', '.join(AUDIO_SUFFIXES)}) under {root}")


def _under(path: str, folders: tuple[str, ...]) -> bool:
    return any(storage.is_within(storage.real(path), f) for f in folders)


def audio_in_folder(root: str | os.PathLike, exclude: tuple[str | os.PathLike, ...] = (),
                    allow_outside_root: bool = False) -> list[str]:
    """Every usable audio file under `root`, recursively, sorted, except what is under an `exclude`d
    folder or another run's output folder. Entries that cannot be a clip (names that are not UTF-8, folders
    named like audio, broken links, named pipes, symlinks out of the root unless `allow_outside_root`,
    symlinked folders) are skipped and counted in one warning per reason naming the first; no audio at all is
    a UsageError."""
    return [e["path"] for e in _folder_entries(root, exclude, allow_outside_root)]


def list_folder(root: str, exclude: tuple[str, ...] = (), allow_outside_root: bool = False) -> pa.Table:
    """Every audio file under `root` (see `audio_in_folder`), recursively, as bona fide; utt_id = relative path
    without suffix."""
    base = storage.normalize(root).rstrip("/") + "/"
    if not storage.is_uri(base) and holds_manifest(base) and \
            not _under(base, tuple(storage.real(storage.normalize(str(e))) for e in exclude)):
        raise UsageError(f"{root} is a hardspoof output folder (it holds manifest/), not a corpus of originals; "
                         f"give its manifest ({storage.join(base, 'manifest')}) where a manifest is asked for")

    def entries() -> Iterator[dict]:
        for e in _folder_entries(root, exclude, allow_outside_root):
            path = e["path"]  # under root, as the walk found it: the id is what follows (relpath is ~10x slower)
            rel = path[len(base):] if path.startswith(base) else storage.relative(path, root)
            yield {**_entry(posixpath.splitext(rel)[0], path, "bonafide"), **e}

    return _check_unique(listing.table_from_rows(entries()), str(root))


def _read_table(path: str) -> pa.Table:
    """A CSV/TSV/Parquet corpus table, every column as strings."""
    import pyarrow.csv as pacsv

    if storage.suffix(path) == ".parquet":
        table = pq.read_table(storage.readable(path))
        return pa.table({n: pc.cast(table[n], pa.string()) for n in table.column_names})
    data = storage.read_bytes(path)
    sample = data[:4096].decode("utf-8", errors="replace")
    delimiter = "\t" if storage.suffix(path) == ".tsv" or ("\t" in sample and "," not in sample) else ","
    first = sample.split("\n", 1)[0].strip("\r")
    names = next(csv.reader([first], delimiter=delimiter)) if first else []
    return pacsv.read_csv(pa.BufferReader(data), read_options=pacsv.ReadOptions(use_threads=False),
                          parse_options=pacsv.ParseOptions(delimiter=delimiter),
                          convert_options=pacsv.ConvertOptions(column_types={n: pa.string() for n in names},
                                                               strings_can_be_null=False))


def list_table(path: str, allow_outside_root: bool = False) -> pa.Table:
    """A CSV/TSV/Parquet with at least `path,label`; optional utt_id, attack, speaker, language, split."""
    try:
        table = _read_table(path)
    except (OSError, UnicodeDecodeError, csv.Error, pa.ArrowException) as e:
        raise UsageError(f"cannot read corpus table {path}: {first_line(e)}") from None
    if not table.num_rows:
        raise UsageError(f"corpus table {path} has no rows")
    missing = [c for c in ("path", "label") if c not in table.column_names]
    if missing:
        raise UsageError(f"corpus table {path} lacks column(s) {', '.join(missing)} (needs at least path,label)")
    root, table_name = storage.parent(path), storage.name(path)
    real_dirs: dict[str, str] = {}  # real path of each folder seen: symlinked folders resolved once each
    real_root = storage.real(root)

    def entries() -> Iterator[dict]:
        cols = [c for c in ("utt_id", "path", "label", "attack", "speaker", "language", "split") if c in table.column_names]
        for batch in table.select(cols).to_batches(max_chunksize=listing.CHUNK):
            for i, rec in enumerate(batch.to_pylist()):
                where = f"{table_name} line {i + 2}"
                audio = storage.join(root, str(rec["path"]))
                if not allow_outside_root:
                    folder = storage.parent(audio)
                    if folder not in real_dirs:
                        real_dirs[folder] = storage.real(folder)
                    real = storage.join(real_dirs[folder], storage.name(audio))
                    if not storage.is_within(storage.real(real) if os.path.islink(real) else real, real_root):
                        raise UsageError(f"{where}: path {rec['path']} is outside the corpus root {root} "
                                         "(pass --allow-outside-root to permit)")
                label = _label(rec["label"], where)
                attack = rec.get("attack") or None
                yield _entry(str(rec.get("utt_id") or posixpath.splitext(str(rec["path"]))[0]), audio, label,
                             attack=attack if label == "spoof" else "-", speaker=rec.get("speaker"),
                             language=rec.get("language"), split=_split(rec.get("split"), where))

    return _check_unique(listing.table_from_rows(entries()), table_name)


def _files_in(folder: str) -> set[str]:
    """Names of the files directly in `folder` (empty when it is not a folder)."""
    if storage.kind(folder) != storage.DIR:
        return set()
    return {storage.name(p) for p, k in storage.entries(folder) if k == storage.FILE}


def _asvspoof_audio(protocol: str, layout: str, rows: list[dict]) -> dict[str | None, str]:
    """{split: folder holding that split's UTT.flac files}, searched where the official release keeps them
    (see `protocols.audio_candidates`)."""
    here, found = storage.parent(protocol), {}
    for r in rows:
        split = r["split"]
        if split in found:
            continue
        for c in protocols.audio_candidates(here, layout, split):
            folder = storage.join(here, c)
            folder = folder if storage.is_uri(folder) else os.path.normpath(folder)
            names = _files_in(folder)
            if any(f"{r['utt_id']}{s}" in names for s in (".flac", ".wav")):
                found[split] = folder
                break
        else:
            raise UsageError(f"cannot find the audio folder of {storage.name(protocol)} ({layout}, split "
                             f"{split or 'unknown'}): no {r['utt_id']}.flac where the release keeps it; pass --audio-dir")
    return found


def protocol_layout(path: str) -> str | None:
    """The ASVspoof protocol layout of a file (see `protocols`), from its first complete lines, or None."""
    head = storage.read_bytes(path)[:1 << 16].decode("utf-8", errors="replace")
    lines = [line for line in (head.splitlines()[:-1] if len(head) == 1 << 16 else head.splitlines()) if line.strip()]
    # all of the first lines fit a layout; else the first line alone (then parsing names the line that does not)
    return protocols.detect(lines[:20], storage.name(path)) or protocols.detect(lines[:1], storage.name(path))


def list_asvspoof(protocol: str, audio_dir: str | None = None) -> pa.Table:
    """An ASVspoof protocol (2019 LA, 2021 LA/DF keys, ASVspoof 5; layout detected, see `protocols`);
    audio at audio_dir/UTT.flac, by default found where the official release keeps it."""
    pname = storage.name(protocol)
    layout = protocol_layout(protocol)
    if layout is None:
        raise UsageError(f"{pname} is not a protocol in a known layout ({', '.join(protocols.PROTOCOLS)})")
    rows = protocols.parse(storage.read_bytes(protocol).decode("utf-8", errors="replace"), layout, pname)
    if not rows:
        raise UsageError(f"protocol {protocol} has no lines")
    folders = {None: audio_dir} if audio_dir else _asvspoof_audio(protocol, layout, rows)
    present = {f: _files_in(f) for f in set(folders.values())}

    def entries() -> Iterator[dict]:
        for r in rows:
            folder = folders.get(r["split"], folders.get(None)) or next(iter(folders.values()))
            audio = next((f"{r['utt_id']}{s}" for s in (".flac", ".wav") if f"{r['utt_id']}{s}" in present[folder]),
                         f"{r['utt_id']}.flac")
            yield _entry(r["utt_id"], storage.join(folder, audio), r["label"], attack=r["attack"],
                         speaker=r["speaker"], language=r["language"], split=r["split"])

    return _check_unique(listing.table_from_rows(entries()), pname)


def _is_protocol(path: str) -> bool:
    return protocol_layout(path) is not None


def _is_interop(path: str, found: str | None) -> bool:
    """A Hugging Face datasets folder or a lhotse CutSet (see `interop`)."""
    from . import interop

    if found == storage.DIR and storage.kind(storage.join(path, "protocol.csv")) == storage.FILE:
        return False
    return (found == storage.DIR and interop.is_hf_folder(path)) or (found is not None and interop.is_cutset(path))


def _interop_rows(path: str, audio_dir, max_seconds: float | None = None, originals_only: bool = False) -> list[dict]:
    """Described rows of a datasets folder or a CutSet; embedded or cut audio is written once under
    `audio_dir` (default `<source>-audio` beside it)."""
    from . import interop

    read = interop.read_hf_folder if storage.kind(path) == storage.DIR and interop.is_hf_folder(path) else interop.read_cutset
    return read(path, audio_dir=audio_dir, max_seconds=max_seconds, originals_only=originals_only)


def _listing_of_rows(rows: list[dict]) -> pa.Table:
    """The listing of already described rows (a failed row's error becomes the entry's problem)."""
    keys = ("utt_id", "path", "label", "attack", "speaker", "language", "split")
    return listing.table_from_rows({**{k: r.get(k) for k in keys},
                                    "problem": r["error"] if r["status"] == "failed" else None} for r in rows)


def list_corpus(corpus: str | os.PathLike, audio_dir: str | os.PathLike | None = None,
                allow_outside_root: bool = False, exclude: tuple[str | os.PathLike, ...] = ()) -> pa.Table:
    """The listing (see `listing`) of a corpus: 'demo', a folder, a CSV/TSV/Parquet table or an ASVspoof
    protocol; no audio is opened.

    A folder holding `protocol.csv` is read through that table (labels, splits, speakers); a folder
    read file by file leaves out what is under an `exclude`d folder (a run's own output).
    """
    if str(corpus) == "demo":
        return list_table(str(DEMO / "protocol.csv"))
    path = storage.normalize(corpus)
    found = storage.kind(path)
    if found is None:
        raise UsageError(f"corpus not found: {path} (give 'demo', a folder of audio, a CSV/TSV/Parquet or a protocol file)")
    if _is_interop(path, found):
        return _listing_of_rows(_interop_rows(path, audio_dir, originals_only=True))
    if found == storage.DIR:
        table = storage.join(path, "protocol.csv")
        if storage.kind(table) == storage.FILE:
            return list_table(table, allow_outside_root)
        return list_folder(path, tuple(map(str, exclude)), allow_outside_root)
    if storage.suffix(path) in (".csv", ".tsv", ".parquet"):  # ASVspoof 5 protocols are .tsv files
        if storage.suffix(path) != ".parquet" and _is_protocol(path):
            return list_asvspoof(path, storage.normalize(audio_dir) if audio_dir else None)
        return list_table(path, allow_outside_root)
    if _is_protocol(path):
        return list_asvspoof(path, storage.normalize(audio_dir) if audio_dir else None)
    raise UsageError(f"cannot tell what corpus {storage.name(path)} is: use a folder, .csv/.tsv/.parquet, or an ASVspoof protocol .txt")


def import_chunks(corpus: str | os.PathLike, audio_dir: str | os.PathLike | None = None,
                  allow_outside_root: bool = False, exclude: tuple[str | os.PathLike, ...] = (),
                  max_seconds: float | None = None) -> Iterator[list[dict]]:
    """Rows of originals for a corpus (see `list_corpus`), DESCRIBE_CHUNK at a time (a row is a dict of ~30
    columns: a few KiB), each file opened once for its header and sha256. A clip whose header declares more
    than `max_seconds` seconds is a failed row."""
    if str(corpus) != "demo":
        path = storage.normalize(corpus)
        if _is_interop(path, storage.kind(path)):
            yield _interop_rows(path, audio_dir, max_seconds=max_seconds)
            return
    table = list_corpus(corpus, audio_dir, allow_outside_root, exclude)
    for batch in table.to_batches(max_chunksize=DESCRIBE_CHUNK):
        yield [describe_row(e, max_seconds) for e in batch.to_pylist()]


def import_corpus(corpus: str | os.PathLike, audio_dir: str | os.PathLike | None = None,
                  allow_outside_root: bool = False, exclude: tuple[str | os.PathLike, ...] = (),
                  max_seconds: float | None = None) -> list[dict]:
    """Every row of `import_chunks` in one list (for small corpora and tests)."""
    return [r for chunk in import_chunks(corpus, audio_dir, allow_outside_root, exclude, max_seconds) for r in chunk]

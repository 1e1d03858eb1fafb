"""`manifests export --format hf`: a manifest -> a Hugging Face `datasets` folder, audio embedded.

The layout is the one `Dataset.push_to_hub` writes, so `datasets.load_dataset(OUT)` reads it as it is and
`huggingface-cli upload REPO OUT --repo-type dataset` (or `load_dataset(OUT).push_to_hub(REPO)`) publishes it:

    OUT/README.md                                 dataset card; its `configs` name each split's files
    OUT/data/<split>-NNNNN-of-NNNNN.parquet       shards of at most `max_shard_bytes` (uncompressed, as datasets counts)

A shard holds an `audio` column `{bytes, path}`, whose bytes are the clip file's own bytes (the FLAC that
`reconstruct` wrote: nothing is decoded or re-encoded) and whose path is a file name, as datasets keeps it
(the base name: what push_to_hub's embedding step would leave), then every manifest column as it is, except
`path`, which becomes `<utt_id><suffix>` (unique, as utt_ids are; the manifest's path is relative to a folder
the dataset does not have). The schema metadata key `huggingface` carries the
features (`audio`: Audio, the rest: Value), which is how datasets restores the Audio feature with no cast.
Splits take datasets' names: train, validation (the manifest's dev), test (eval); a reconstruction without a
split follows its source; rows with no split at all are `train` when no row has one, else `unsplit`. Only
`ok` rows are exported (a failed row has no audio); a clip that cannot be read, or whose bytes no longer
match the manifest's sha256, is left out and counted.

Memory: the manifest's winner keys (see `stream`), one split's open shard writer at a time, and one row
group of at most `row_group_bytes` of audio (plus the one clip that crosses it): never a whole shard.
"""
from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from . import storage
from .audio import AUDIO_SUFFIXES
from .errors import UsageError, first_line
from .export_folder import prepare_out
from .io import remote_path_refusal
from .schema import SCHEMA, SCHEMA_VERSION, VERSION_KEY
from .stream import ManifestStream

log = logging.getLogger("hardspoof.export")

HF_SPLITS = {"train": "train", "dev": "validation", "eval": "test"}  # manifest split -> datasets' split name
MAX_SHARD_BYTES = 500 * 10**6      # datasets' config.MAX_SHARD_SIZE ("500MB")
ROW_GROUP_BYTES = 100 * 10**6      # datasets' config.MAX_ROW_GROUP_SIZE ("100MB"): random access reads one group
CDC_OPTIONS = {"min_chunk_size": 256 * 1024, "max_chunk_size": 1024 * 1024, "norm_level": 0}  # datasets' defaults
_VALUE_DTYPES = {pa.string(): "string", pa.int64(): "int64", pa.int32(): "int32", pa.float32(): "float32",
                 pa.float64(): "float64", pa.bool_(): "bool"}
_AUDIO = pa.struct([pa.field("bytes", pa.binary()), pa.field("path", pa.string())])
_SIZE = re.compile(r"^\s*([0-9.]+)\s*([kmgt]?i?b?)\s*$", re.I)


def parse_size(text: str | int) -> int:
    """'500MB' -> 500_000_000, '64MiB' -> 67_108_864, '1000' -> 1000 (datasets' convert_file_size_to_int)."""
    if isinstance(text, int):
        return text
    m = _SIZE.match(str(text))
    if not m:
        raise UsageError(f"size {text!r} is not a number of bytes such as 500MB, 64MiB or 1000000")
    unit = m.group(2).upper().rstrip("B")
    base = 1024 if unit.endswith("I") else 1000
    power = " KMGT".index(unit[:1]) if unit else 0
    value = int(float(m.group(1)) * base ** power)
    if value < 1:
        raise UsageError(f"size {text!r} must be at least 1 byte")
    return value


def _dtype(t: pa.DataType) -> str:
    if pa.types.is_timestamp(t):
        return f"timestamp[{t.unit}{', tz=' + t.tz if t.tz else ''}]"
    if t not in _VALUE_DTYPES:
        raise TypeError(f"no datasets Value dtype for {t}")
    return _VALUE_DTYPES[t]


def hf_features() -> dict:
    """The datasets `Features.to_dict()` of an export: audio first, then every manifest column."""
    return {"audio": {"_type": "Audio"},
            **{f.name: {"dtype": _dtype(f.type), "_type": "Value"} for f in SCHEMA}}


@functools.lru_cache(maxsize=1)
def hf_schema() -> pa.Schema:
    """Arrow schema of a shard, with the `huggingface` metadata as datasets writes it (all fields nullable,
    as datasets' own schemas are, so its `Features.from_arrow_schema` takes the metadata's features)."""
    fields = [pa.field("audio", _AUDIO)] + [pa.field(f.name, f.type) for f in SCHEMA]
    meta = {"huggingface": json.dumps({"info": {"features": hf_features()}}), VERSION_KEY.decode(): SCHEMA_VERSION}
    return pa.schema(fields, metadata=meta)


def _writer_options() -> dict:
    """What datasets' ParquetWriter passes: embedded media stored plain and uncompressed (already compressed
    audio; byte ranges stay addressable), the other columns dictionary-encoded and snappy-compressed."""
    media = ("audio.bytes", "audio.path")
    others = [f.name for f in SCHEMA]
    return {"compression": {**dict.fromkeys(media, "none"), **dict.fromkeys(others, "snappy")},
            "use_dictionary": others, "column_encoding": dict.fromkeys(media, "PLAIN"),
            "use_content_defined_chunking": CDC_OPTIONS, "write_page_index": True}


def clip_name(utt_id: str, path: str) -> str:
    """The name a clip takes inside the dataset: `<utt_id><suffix of its file>`."""
    suffix = os.path.splitext(storage.name(path))[1].lower()
    return utt_id + (suffix if suffix in AUDIO_SUFFIXES else ".flac")


@dataclass
class ShardWriter:
    """Shards of one split, written as hidden temp files in `folder` and renamed by `finish` once their count
    is known. Holds at most one row group of rows in memory; `peak_buffered_bytes` records the most it held."""

    folder: Path
    split: str
    max_shard_bytes: int
    row_group_bytes: int
    shards: list[Path] = field(default_factory=list)
    rows: int = 0
    peak_buffered_bytes: int = 0
    _buf: list[dict] = field(default_factory=list)
    _buf_bytes: int = 0
    _shard_bytes: int = 0
    _writer: pq.ParquetWriter | None = None

    def add(self, row: dict, nbytes: int) -> None:
        if self._writer is not None and self._shard_bytes + self._buf_bytes + nbytes > self.max_shard_bytes:
            self._close_shard()
        elif self._buf and self._buf_bytes + nbytes > self.row_group_bytes:
            self._flush()
        self._buf.append(row)
        self._buf_bytes += nbytes
        self.peak_buffered_bytes = max(self.peak_buffered_bytes, self._buf_bytes)
        self.rows += 1
        if self._writer is None:
            tmp = self.folder / f".{self.split}-{len(self.shards):05d}.partial.parquet"
            self.shards.append(tmp)
            self._writer = pq.ParquetWriter(tmp, hf_schema(), **_writer_options())

    def _flush(self) -> None:
        if self._buf:
            self._writer.write_table(pa.Table.from_pylist(self._buf, schema=hf_schema()))
            self._shard_bytes += self._buf_bytes
            self._buf, self._buf_bytes = [], 0

    def _close_shard(self) -> None:
        self._flush()
        self._writer.add_key_value_metadata({"content_defined_chunking": json.dumps(CDC_OPTIONS)})
        self._writer.close()
        self._writer, self._shard_bytes = None, 0

    def finish(self) -> list[Path]:
        """Close the last shard and give every shard its final name `<split>-NNNNN-of-NNNNN.parquet`."""
        if self._writer is not None:
            self._close_shard()
        final = [self.folder / f"{self.split}-{k:05d}-of-{len(self.shards):05d}.parquet" for k in range(len(self.shards))]
        for tmp, dest in zip(self.shards, final):
            os.replace(tmp, dest)
        self.shards = final
        return final


def _clip(row: dict, manifest: str, allow_remote_paths: bool) -> tuple[bytes | None, str | None]:
    """(the file's bytes, None) or (None, why it is left out)."""
    refusal = remote_path_refusal(row["path"], manifest, allow_remote_paths)
    if refusal:
        return None, refusal
    try:
        data = storage.read_bytes(row["path"])
    except (OSError, UsageError) as e:
        return None, f"cannot read {row['path']}: {first_line(e)}"
    if row.get("sha256") and hashlib.sha256(data).hexdigest() != row["sha256"]:
        return None, f"{row['path']} changed since the manifest was written (sha256 differs)"
    return data, None


def _card(splits: dict[str, int]) -> str:
    configs = "\n".join(f"  - split: {s}\n    path: data/{s}-*" for s in splits)
    counts = ", ".join(f"{s} {n}" for s, n in splits.items())
    return (f"---\nconfigs:\n- config_name: default\n  data_files:\n{configs}\n---\n\n"
            "# hardspoof manifest export\n\n"
            f"Clips per split: {counts}. Exported from a hardspoof manifest (schema v{SCHEMA_VERSION}) by "
            "`manifests export --format hf`: the `audio` column holds each clip file's own bytes, the other "
            "columns are the manifest's (label: bonafide | spoof; kind: original | reconstruction; source_id: "
            "the original a clip derives from). Load with `datasets.load_dataset(\"<this folder or repo>\")`.\n")


def export_hf(manifest: str | os.PathLike, out: str | os.PathLike, max_shard_bytes: int = MAX_SHARD_BYTES,
              row_group_bytes: int = ROW_GROUP_BYTES, allow_remote_paths: bool = False,
              overwrite: bool = False) -> dict:
    """Write the datasets folder of `manifest` into `out` (see the module docstring). Returns a report:
    rows per split, shard files, clips left out {utt_id: reason}, and peak_buffered_bytes."""
    root = prepare_out(os.fspath(out), overwrite, ("README.md", "data/*.parquet", "data/.*.partial.parquet"))
    (root / "data").mkdir(exist_ok=True)
    stream = ManifestStream(manifest)
    manifest = os.fspath(manifest)
    data = root / "data"
    writers: dict[str, ShardWriter] = {}
    skipped: dict[str, str] = {}
    for split, hf_split in {**HF_SPLITS, None: "unsplit" if stream.has_split else "train"}.items():
        writer = ShardWriter(data, hf_split, max_shard_bytes, min(row_group_bytes, max_shard_bytes))
        for table in stream.batches():
            for row in table.to_pylist():
                if stream.split(row) != split or row["status"] != "ok":
                    continue
                audio, why = _clip(row, manifest, allow_remote_paths)
                if audio is None:
                    skipped[row["utt_id"]] = why
                    continue
                name = clip_name(row["utt_id"], row["path"])
                writer.add({**row, "path": name, "audio": {"bytes": audio, "path": posixpath.basename(name)}},
                           len(audio) + len(name) + 512)  # + the other columns, roughly
        if writer.rows:  # one split's shards are complete before the next split's start
            writers[hf_split] = writer
            writer.finish()
    if not writers:
        raise UsageError(f"manifest {manifest} has no readable ok clips to export"
                         + (f" ({len(skipped)} left out, e.g. {next(iter(skipped.values()))})" if skipped else ""))
    splits = {s: w.rows for s, w in writers.items()}
    storage.write_atomic(root / "README.md", lambda fh: fh.write(_card(splits).encode()))
    for utt, why in list(skipped.items())[:5]:
        log.warning("left out %s: %s", utt, why)
    return {"out": str(root), "splits": splits, "shards": sorted(str(p) for w in writers.values() for p in w.shards),
            "skipped": skipped, "peak_buffered_bytes": max(w.peak_buffered_bytes for w in writers.values())}
